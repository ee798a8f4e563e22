"""The worker's counters and the `$SYS/broker/...` topics made from them.

Counters are plain attributes incremented on the hot path. Every
`sys_interval` seconds the node-wide totals (this worker's counters, with
the packets and bytes by type of `packet_counts`, plus the latest ones peers
reported over the bus) are published as retained messages, the way Mosquitto
does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

from actormq import __version__
from actormq.actors.drops import REASONS
from actormq.actors.packet_counts import DIRECTIONS, PACKET_TYPES


@dataclass(slots=True)
class Stats:
    """This worker's counters since it started."""

    messages_received: int = 0
    messages_sent: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    messages_dropped: int = 0
    dropped_queue_full: int = 0
    dropped_hold_timeout: int = 0
    dropped_expired: int = 0
    dropped_no_route: int = 0
    dropped_too_large: int = 0
    clients_connected: int = 0
    clients_disconnected: int = 0      # persistent sessions with no connection
    clients_total_connects: int = 0
    subscriptions: int = 0
    retained: int = 0
    bus_publish_frames: int = 0
    bus_durable_asks: int = 0          # messages to other workers that wait for a DUR answer

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def sum_stats(local: dict, peers: dict[int, dict]) -> dict:
    """Node-wide totals; retained is node-wide already, so it is not summed."""
    total = dict(local)
    for counters in peers.values():
        for name, value in counters.items():
            if name != "retained":
                total[name] = total.get(name, 0) + value
    return total


def sys_messages(totals: dict, started: float) -> list[tuple[str, bytes]]:
    """The $SYS topics and payloads for the given totals."""
    uptime = int(time.time() - started)
    values = {
        "$SYS/broker/version": f"actormq {__version__}",
        "$SYS/broker/uptime": f"{uptime} seconds",
        "$SYS/broker/clients/connected": totals["clients_connected"],
        "$SYS/broker/clients/disconnected": totals["clients_disconnected"],
        "$SYS/broker/clients/total": totals["clients_connected"] + totals["clients_disconnected"],
        "$SYS/broker/messages/received": totals["messages_received"],
        "$SYS/broker/messages/sent": totals["messages_sent"],
        "$SYS/broker/messages/dropped": totals["messages_dropped"],
        "$SYS/broker/publish/messages/dropped": totals["messages_dropped"],
        **{f"$SYS/broker/messages/dropped/{reason}": totals.get(f"dropped_{reason}", 0)
           for reason in REASONS},
        "$SYS/broker/bytes/received": totals["bytes_received"],
        "$SYS/broker/bytes/sent": totals["bytes_sent"],
        "$SYS/broker/subscriptions/count": totals["subscriptions"],
        "$SYS/broker/retained messages/count": totals["retained"],
        "$SYS/broker/bus/publish/frames": totals["bus_publish_frames"],
        "$SYS/broker/bus/publish/durable": totals.get("bus_durable_asks", 0),
        **{f"$SYS/broker/packets/{direction}/{kind}": totals.get(f"packets_{direction}_{kind}", 0)
           for direction in DIRECTIONS for kind in PACKET_TYPES[1:]},
        **{f"$SYS/broker/bytes/{direction}/{kind}": totals.get(f"bytes_{direction}_{kind}", 0)
           for direction in DIRECTIONS for kind in PACKET_TYPES[1:]},
    }
    return [(topic, str(value).encode()) for topic, value in values.items()]
