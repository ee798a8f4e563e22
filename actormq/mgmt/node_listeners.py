"""The node's listeners as the operator sees them: EMQX 4's listener rows
(`GET /api/v4/listeners`, `actormq listener show`) and whether each accepts
a connection now (`/health`, `/health/listeners`).

Rows come from the node's listener plan (`node.listeners`: tcp, ssl, ws,
wss, unix; each worker's own port when `listener.tcp.worker_ports`) and the
workers' connection counts per listener (`metrics.get`).
"""

from __future__ import annotations

import asyncio

PROBE_SECONDS = 1.0


def mqtt_listeners(node) -> list[dict]:
    """One row per MQTT listener of the node."""
    every_worker = [handle.worker_id for handle in node.workers]
    rows = [{"identifier": f"mqtt:{listener.type}:{listener.name}", "protocol": f"mqtt:{listener.type}",
             "key": listener.key, "type": listener.type, "host": listener.host, "port": listener.port,
             "path": listener.path, "listen_on": listener.address,
             "max_conns": listener.max_connections or None, "workers": every_worker}
            for listener in node.listeners]
    for handle in node.workers:
        if handle.private_port:
            rows.append({"identifier": f"mqtt:tcp:worker{handle.worker_id}", "protocol": "mqtt:tcp",
                         "key": None, "type": "tcp", "host": node.host, "port": handle.private_port,
                         "path": "", "listen_on": f"{node.host}:{handle.private_port}", "max_conns": None,
                         "workers": [handle.worker_id]})
    return rows


async def accepts(listener: dict, timeout: float = PROBE_SECONDS) -> bool:
    """Whether the listener accepts a connection now (a wildcard address probes loopback)."""
    try:
        if listener["type"] == "unix":
            opening = asyncio.open_unix_connection(listener["path"])
        else:
            host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listener["host"],
                                                                             listener["host"])
            opening = asyncio.open_connection(host, listener["port"])
        _reader, writer = await asyncio.wait_for(opening, timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


async def listener_rows(plane) -> list[dict]:
    """EMQX 4's listener rows, with the connections on each and whether it accepts now."""
    from actormq.mgmt.node_metrics import node_metrics
    metrics = await node_metrics(plane)
    rows = []
    for listener in mqtt_listeners(plane.node):
        rows.append({
            "identifier": listener["identifier"], "protocol": listener["protocol"],
            "listen_on": listener["listen_on"], "acceptors": len(listener["workers"]),
            "current_conns": metrics.listeners.get(listener["key"]) if listener["key"] else None,
            "max_conns": listener["max_conns"], "shutdown_count": [],
            "running": await accepts(listener),
        })
    if plane.listener is not None:
        host, _port = plane.listener
        rows.append({"identifier": "http:management", "protocol": "http:management",
                     "listen_on": f"{host}:{plane.url.rsplit(':', 1)[1]}", "acceptors": 1,
                     "current_conns": None, "max_conns": None, "shutdown_count": [], "running": True})
    return rows


async def listener_health(plane) -> list[dict]:
    return [{"identifier": listener["identifier"], "listen_on": listener["listen_on"],
             "status": "up" if await accepts(listener) else "down"}
            for listener in mqtt_listeners(plane.node)]
