"""actormq's own operator routes (beyond EMQX 4), used by the admin CLI:

- `GET /api/v4/actormq/sessions` — VerneMQ's session columns (filters as
  `/clients`, plus `client_id_regex`), every worker's rows;
- `POST /api/v4/actormq/sessions/{clientid}/disconnect` (`{"cleanup": bool}`);
- `GET|DELETE /api/v4/actormq/metrics` — every counter and gauge; reset counters;
- `GET /api/v4/actormq/status` — uptime, version, workers with pid, CPU, RSS,
  connections, storage size;
- `GET /api/v4/actormq/config` — the values in force and where each came from;
- `PUT /api/v4/actormq/log/level` (`{"level": "debug"}`) — node and workers;
- `GET /api/v4/actormq/trace/client?clientid=X` — a stream of JSON lines, one
  per event of that client, until the caller hangs up.
"""

from __future__ import annotations

import json
import logging
import os
import time

from aiohttp import web

from actormq import __version__
from actormq.conf.schema import lookup
from actormq.mgmt.app import plane_of
from actormq.mgmt.envelope import bad_parameter, json_body, missing_parameter, ok
from actormq.mgmt.node_metrics import node_metrics
from actormq.mgmt.routes.clients import CLIENT_FILTERS, paged

routes = web.RouteTableDef()

LEVELS = ("debug", "info", "warning", "error")
TRACE_HEARTBEAT = 15.0
TRACE_POLL = 1.0        # how soon a caller that hung up stops the trace on the workers


@routes.get("/api/v4/actormq/sessions")
async def sessions(request: web.Request) -> web.Response:
    args = {name: request.query[name] for name in (*CLIENT_FILTERS, "client_id_regex")
            if name in request.query}
    rows, gathered = await plane_of(request).ask_rows("sessions.list", args)
    rows.sort(key=lambda row: row["client_id"])
    return paged(request, rows, gathered, bool(args))


@routes.post("/api/v4/actormq/sessions/{clientid}/disconnect")
async def disconnect(request: web.Request) -> web.Response:
    body = await json_body(request) if request.can_read_body else {}
    cleanup = bool(body.get("cleanup")) if isinstance(body, dict) else False
    rows, gathered = await plane_of(request).ask_rows(
        "clients.disconnect", {"clientid": request.match_info["clientid"], "cleanup": cleanup})
    return ok(rows, **({"failed": gathered.failures()} if gathered.failed else {}))


@routes.get("/api/v4/actormq/metrics")
async def all_metrics(request: web.Request) -> web.Response:
    metrics = await node_metrics(plane_of(request))
    return ok(metrics.flat(), **({"failed": metrics.failed} if metrics.failed else {}))


@routes.delete("/api/v4/actormq/metrics")
async def reset_metrics(request: web.Request) -> web.Response:
    rows, gathered = await plane_of(request).ask_rows("metrics.reset")
    return ok({"workers": len(rows)}, **({"failed": gathered.failures()} if gathered.failed else {}))


def _dir_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


@routes.get("/api/v4/actormq/status")
async def status(request: web.Request) -> web.Response:
    plane = plane_of(request)
    metrics = await node_metrics(plane)
    answered = {row["worker"]: row for row in metrics.workers}
    workers = []
    for row in plane.workers():
        found = answered.get(row["worker"], {})
        workers.append(row | {k: found.get(k) for k in ("cpu_seconds", "rss_bytes", "connections")})
    return ok({
        "node": plane.node_name, "version": __version__, "uptime_seconds": int(time.time() - plane.started),
        "data_dir": plane.data_dir, "storage_bytes": _dir_size(plane.data_dir),
        "storage_map_size": metrics.storage.get("map_size", 0),
        "connections": metrics.gauges.get("clients_connected", 0),
        "sessions": metrics.gauges.get("sessions", 0), "workers": workers,
    }, **({"failed": metrics.failed} if metrics.failed else {}))


@routes.get("/api/v4/actormq/config")
async def running_config(request: web.Request) -> web.Response:
    config = plane_of(request).node.config      # SIGHUP may have replaced the one the plane started with
    rows = []
    for key in config:
        value = config[key]
        if key == "management.default_application.secret" and value:
            value = "******"
        rows.append({"key": key, "value": lookup(key).format(value), "source": config.source(key)})
    return ok(rows)


@routes.put("/api/v4/actormq/log/level")
async def log_level(request: web.Request) -> web.Response:
    body = await json_body(request)
    level = body.get("level") if isinstance(body, dict) else None
    if level is None:
        raise missing_parameter("level")
    if level not in LEVELS:
        raise bad_parameter(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    logging.getLogger().setLevel(level.upper())
    rows, gathered = await plane_of(request).ask_rows("log.level", {"level": level})
    return ok({"level": level, "workers": len(rows)},
              **({"failed": gathered.failures()} if gathered.failed else {}))


@routes.get("/api/v4/actormq/trace/client")
async def trace_client(request: web.Request) -> web.StreamResponse:
    client_id = request.query.get("clientid")
    if not client_id:
        raise missing_parameter("clientid")
    plane = plane_of(request)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    async with await plane.open_stream("trace.client", {"clientid": client_id}) as stream:
        for worker, reason in sorted(stream.failed.items()):
            await _line(response, {"event": "worker_missing", "node": plane.node_name, "worker": worker,
                                   "reason": reason})
        await _line(response, {"event": "trace_started", "node": plane.node_name, "clientid": client_id,
                               "time": time.time()})
        quiet = 0.0
        while request.transport is not None and not request.transport.is_closing():
            item = await stream.next(TRACE_POLL)
            if item is None:
                quiet += TRACE_POLL
                if quiet >= TRACE_HEARTBEAT:
                    await response.write(b"\n")     # keeps proxies from timing the stream out
                    quiet = 0.0
                continue
            quiet = 0.0
            worker, event = item
            await _line(response, {"node": plane.node_name, "worker": worker} | event)
    return response


async def _line(response: web.StreamResponse, row: dict) -> None:
    await response.write(json.dumps(row, ensure_ascii=False, default=str).encode() + b"\n")
