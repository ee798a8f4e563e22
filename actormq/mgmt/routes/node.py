"""Routes about the node itself (EMQX 4 shape): `/api/v4` (the route list),
brokers, nodes, stats, metrics, listeners, plugins; and the generic admin
route `POST /api/v4/admin/{command}`, which runs any registered worker-side
admin command on every worker (JSON body = its args) and answers every
worker's rows (node and worker in each) with `failed` naming the workers that
did not answer: the CLI of any area can use it without a route of its own.
"""

from __future__ import annotations

import os
import sys
import time

import psutil
from aiohttp import web

from actormq import __version__
from actormq.mgmt.app import plane_of
from actormq.mgmt.envelope import json_body, not_found, ok
from actormq.mgmt.node_listeners import listener_rows
from actormq.mgmt.node_metrics import node_metrics
from actormq.mgmt.plane import rpc_error

routes = web.RouteTableDef()


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = ([f"{hours} hours"] if hours else []) + ([f"{minutes} minutes"] if hours or minutes else [])
    return ", ".join(parts + [f"{seconds} seconds"])


def _release() -> str:
    return f"Python {sys.version.split()[0]}"


def _broker_row(plane) -> dict:
    return {"node": plane.node_name, "node_status": "Running", "sysdescr": "actormq",
            "version": __version__, "otp_release": _release(),
            "uptime": _uptime(time.time() - plane.started),
            "datetime": time.strftime("%Y-%m-%d %H:%M:%S")}


def _one_or_all(request: web.Request, row: dict) -> web.Response:
    wanted = request.match_info.get("node")
    if wanted is None:
        return ok([row])
    if wanted != row["node"]:
        raise not_found(f"no node {wanted!r}")
    return ok(row)


def _per_node(request: web.Request, key: str, value: dict | list) -> web.Response:
    """EMQX's two shapes: `/x` answers [{"node": n, key: value}], `/nodes/{node}/x` the
    value alone (a dict of values gets "node" added)."""
    node = plane_of(request).node_name
    if "node" not in request.match_info:
        return ok([{"node": node, key: value}])
    if request.match_info["node"] != node:
        raise not_found(f"no node {request.match_info['node']!r}")
    return ok({"node": node} | value if isinstance(value, dict) else value)


@routes.get("/api/v4")
async def list_apis(request: web.Request) -> web.Response:
    apis = sorted({(resource.canonical, route.method) for resource in request.app.router.resources()
                   for route in resource if route.method != "HEAD"})
    return ok([{"path": path, "method": method} for path, method in apis])


@routes.get("/api/v4/brokers")
@routes.get("/api/v4/brokers/{node}")
async def brokers(request: web.Request) -> web.Response:
    return _one_or_all(request, _broker_row(plane_of(request)))


@routes.get("/api/v4/nodes")
@routes.get("/api/v4/nodes/{node}")
async def nodes(request: web.Request) -> web.Response:
    plane = plane_of(request)
    metrics = await node_metrics(plane)
    load1, load5, load15 = os.getloadavg()
    memory = psutil.virtual_memory()
    row = _broker_row(plane) | {
        "connections": metrics.gauges.get("clients_connected", 0),
        "load1": f"{load1:.2f}", "load5": f"{load5:.2f}", "load15": f"{load15:.2f}",
        "max_fds": psutil.Process().rlimit(psutil.RLIMIT_NOFILE)[0],
        "memory_total": memory.total, "memory_used": sum(w["rss_bytes"] for w in metrics.workers),
        "process_used": len(metrics.workers), "process_available": len(plane.node.workers),
    }
    return _one_or_all(request, row)


@routes.get("/api/v4/stats")
@routes.get("/api/v4/nodes/{node}/stats")
async def stats(request: web.Request) -> web.Response:
    plane = plane_of(request)
    metrics = await node_metrics(plane)
    route_rows, _gathered = await plane.ask_rows("routes.list")
    g = metrics.gauges
    current = {
        "connections.count": g["clients_connected"], "channels.count": g["sessions"],
        "sessions.count": g["sessions"], "topics.count": len({r["topic"] for r in route_rows}),
        "subscriptions.count": g["subscriptions"], "suboptions.count": g["subscriptions"],
        "subscribers.count": g["subscriptions"],
        "subscriptions.shared.count": sum(1 for r in route_rows if r["topic"].startswith("$share/")),
        "routes.count": len({r["topic"] for r in route_rows}), "retained.count": g["retained"],
    }
    values = {}
    for name, value in current.items():
        values[name] = value
        values[name.replace(".count", ".max")] = plane.high_water(name, value)
    return _per_node(request, "stats", values)


@routes.get("/api/v4/metrics")
@routes.get("/api/v4/nodes/{node}/metrics")
async def metrics(request: web.Request) -> web.Response:
    return _per_node(request, "metrics", (await node_metrics(plane_of(request))).emqx_metrics())


@routes.get("/api/v4/listeners")
@routes.get("/api/v4/nodes/{node}/listeners")
async def listeners(request: web.Request) -> web.Response:
    return _per_node(request, "listeners", await listener_rows(plane_of(request)))


@routes.get("/api/v4/plugins")
@routes.get("/api/v4/nodes/{node}/plugins")
async def plugins(request: web.Request) -> web.Response:
    plane = plane_of(request)
    rows, _gathered = await plane.ask_rows("plugins.list", optional=True)      # actormq.hooks.admin
    unique = {row["name"]: {k: v for k, v in row.items() if k not in ("node", "worker")} for row in rows}
    return _per_node(request, "plugins", [unique[name] for name in sorted(unique)])


@routes.post("/api/v4/admin/{command}")
async def run_admin_command(request: web.Request) -> web.Response:
    plane = plane_of(request)
    args = await json_body(request) if request.can_read_body else {}
    gathered = await plane.ask_all(request.match_info["command"], args if isinstance(args, dict) else {})
    if not gathered.answers:
        raise rpc_error(gathered)
    extra = {"failed": gathered.failures()} if gathered.failed else {}
    return ok(gathered.rows(), **extra)
