"""Worker-side admin commands about counters, gauges, the process and logging:
what `/api/v4/stats`, `/api/v4/metrics`, Prometheus `/metrics`, `actormq
metrics show|reset`, `actormq node status` and `actormq log level` read or
change in each worker.

`metrics.get` answers one flat dict per worker (counters since start or the
last reset, gauges now); the node sums counters across workers (gauges that
are node-wide already, such as the retained count, are taken once).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import fields

import psutil

from actormq.mgmt.commands import CommandError, admin_command

# Stats fields that are gauges (recomputed when read), not counters.
GAUGES = frozenset({"clients_connected", "clients_disconnected", "subscriptions", "retained"})
# Gauges every worker reports for the whole node (summing them would multiply them),
# and the largest-of gauges: the node's value is the highest worker's.
NODE_WIDE = frozenset({"retained", "queue_size_max"})

_PROCESS: list = []


def _process() -> psutil.Process:
    if not _PROCESS:
        _PROCESS.append(psutil.Process(os.getpid()))
    return _PROCESS[0]


def process_info() -> dict:
    process = _process()
    cpu = process.cpu_times()
    return {"pid": process.pid, "cpu_seconds": cpu.user + cpu.system, "rss_bytes": process.memory_info().rss,
            "open_fds": process.num_fds(), "threads": process.num_threads()}


def _storage(broker) -> dict:
    stores = broker.stores
    usage = {"commits": 0, "writes": 0, "commit_seconds": 0.0, "map_size": 0, "live_bytes": 0}
    if stores is None:
        return usage
    for store in stores.owned:
        if hasattr(store, "usage"):
            for name, value in store.usage().items():
                usage[name] = max(usage[name], value) if name in ("map_size", "live_bytes") \
                    else usage[name] + value
    return usage


def _bus(broker) -> dict:
    peers = broker.peers
    if peers is None:
        return {"frames_sent": 0, "frames_dropped": 0}
    bus = peers.bus
    return {"frames_sent": sum(bus.frames_sent.values()), "frames_dropped": bus.frames_dropped}


def _protocols(broker) -> dict:
    counts = {"mqtt3": 0, "mqtt311": 0, "mqtt5": 0}
    names = {3: "mqtt3", 4: "mqtt311", 5: "mqtt5"}
    for session in broker.sessions.values():
        if session.online:
            name = names.get(session.version)
            if name:
                counts[name] += 1
    return counts


def _listeners(broker) -> dict:
    counts: dict[str, int] = {}
    for conn in broker.connections:
        listener = getattr(conn, "listener", None)
        if listener is not None:
            counts[listener.key] = counts.get(listener.key, 0) + 1
    return counts


@admin_command("metrics.get")
def metrics(broker, args: dict) -> dict:
    """This worker's counters and gauges (see the module docstring)."""
    stats = broker.local_stats()
    sizes = [len(s.queue) for s in broker.sessions.values()]
    queued = sum(sizes)
    inflight = sum(s.inflight_count() for s in broker.sessions.values())
    return {
        "counters": {name: value for name, value in stats.items() if name not in GAUGES},
        "gauges": {name: stats[name] for name in GAUGES} | {
            "sessions": len(broker.sessions),
            "routes": len(broker.router.local_filters()),
            "messages_queued": queued,
            "queue_size_max": max(sizes, default=0),
            "messages_inflight": inflight,
            "connections_by_protocol": _protocols(broker),
            "connections_by_listener": _listeners(broker),
        },
        "storage": _storage(broker),
        "bus": _bus(broker),
        "process": process_info(),
        "hooks": _hook_stats(broker),
        "started": broker.started,
    }


def _hook_stats(broker) -> list[dict]:
    """Per plugin (provider): calls, failures, timeouts, drops, skips, latency, hook points."""
    hooks = getattr(broker, "hooks", None)
    return [] if hooks is None else hooks.describe()


@admin_command("metrics.reset")
def reset(broker, args: dict) -> int:
    """Zero this worker's counters (gauges stay what they are)."""
    stats = broker.stats
    reset_count = 0
    for field in fields(stats):
        if field.name not in GAUGES:
            setattr(stats, field.name, 0)
            reset_count += 1
    broker.packets.reset()
    return reset_count


@admin_command("log.level")
def log_level(broker, args: dict) -> str:
    """Set the lowest level this worker logs (debug, info, warning, error)."""
    level = str(args.get("level", "")).lower()
    if level not in ("debug", "info", "warning", "error"):
        raise CommandError(f"level must be one of debug, info, warning, error; got {level!r}")
    logging.getLogger().setLevel(level.upper())
    return level


@admin_command("worker.status")
def status(broker, args: dict) -> dict:
    """The worker's process, its connections and sessions."""
    return process_info() | {"connections": len(broker.connections), "sessions": len(broker.sessions),
                             "uptime_seconds": int(time.time() - broker.started)}
