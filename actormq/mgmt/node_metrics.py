"""Node-wide numbers from every worker's `metrics.get`: counters summed
(packets and bytes by type, drops by reason among them), gauges summed
(node-wide ones taken once), storage and bus usage, hook statistics per hook
point and plugin, and the per-worker process rows. `/api/v4/metrics`, `/api/v4/stats`, Prometheus
`/metrics` and `actormq metrics show` all read this one aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actormq.actors.drops import REASONS
from actormq.actors.packet_counts import PACKET_TYPES
from actormq.mgmt.worker_stats import NODE_WIDE

_MAX_KEYS = ("map_size", "live_bytes")
HOOK_COUNTS = ("calls", "failures", "timeouts", "dropped", "skipped")
# the packet types each side may send (the other direction's counter is always 0)
FROM_CLIENTS = ("connect", "publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe",
                "unsubscribe", "pingreq", "disconnect", "auth")
TO_CLIENTS = ("connack", "publish", "puback", "pubrec", "pubrel", "pubcomp", "suback", "unsuback",
              "pingresp", "disconnect", "auth")
# EMQX 4's name of each drop reason we count
EMQX_DROPS = {"queue_full": "delivery.dropped.queue_full", "hold_timeout": "delivery.dropped.queue_full",
              "expired": "delivery.dropped.expired", "no_route": "messages.dropped.no_subscribers",
              "too_large": "delivery.dropped.too_large"}


@dataclass
class NodeMetrics:
    """What the workers that answered report, added up."""

    node: str
    counters: dict = field(default_factory=dict)
    gauges: dict = field(default_factory=dict)
    protocols: dict = field(default_factory=dict)
    listeners: dict = field(default_factory=dict)     # listener key -> connections
    storage: dict = field(default_factory=dict)
    bus: dict = field(default_factory=dict)
    workers: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    hooks: dict = field(default_factory=dict)       # (hook point, plugin) -> summed over workers

    def add(self, worker: int, answer: dict) -> None:
        _sum_into(self.counters, answer["counters"])
        gauges = dict(answer["gauges"])
        _sum_into(self.protocols, gauges.pop("connections_by_protocol", {}))
        _sum_into(self.listeners, gauges.pop("connections_by_listener", {}))
        for name, value in gauges.items():
            if name in NODE_WIDE:
                self.gauges[name] = max(self.gauges.get(name, 0), value)
            else:
                self.gauges[name] = self.gauges.get(name, 0) + value
        for name, value in answer["storage"].items():
            self.storage[name] = max(self.storage.get(name, 0), value) if name in _MAX_KEYS \
                else self.storage.get(name, 0) + value
        _sum_into(self.bus, answer["bus"])
        self.workers.append({"worker": worker, **answer["process"],
                             "connections": answer["gauges"]["clients_connected"]})
        for row in answer.get("hooks", ()):
            self._add_plugin(row)

    def _add_plugin(self, row: dict) -> None:
        for point, stats in row.get("points", {}).items():
            total = self.hooks.setdefault((point, row["name"]), dict.fromkeys(HOOK_COUNTS, 0) | {
                "latency_sum": 0.0, "p99_ms": 0.0})
            for name in HOOK_COUNTS:
                total[name] += stats[name]
            total["latency_sum"] += stats["mean_ms"] * stats["calls"] / 1000   # for a calls-weighted mean
            total["p99_ms"] = max(total["p99_ms"], stats["p99_ms"])

    def dropped(self) -> dict:
        """Messages dropped, by reason."""
        return {reason: self.counters.get(f"dropped_{reason}", 0) for reason in REASONS}

    def packets(self, direction: str, unit: str = "packets") -> dict:
        """Packets (or their bytes) received or sent, by packet type."""
        return {kind: self.counters.get(f"{unit}_{direction}_{kind}", 0) for kind in PACKET_TYPES[1:]}

    def flat(self) -> dict:
        """Every number under one dotted name (for `actormq metrics show`)."""
        values = {f"counter.{k}": v for k, v in self.counters.items()}
        values |= {f"gauge.{k}": v for k, v in self.gauges.items()}
        values |= {f"gauge.connections.{k}": v for k, v in self.protocols.items()}
        values |= {f"storage.{k}": v for k, v in self.storage.items()}
        values |= {f"bus.{k}": v for k, v in self.bus.items()}
        for row in self.workers:
            for name in ("pid", "cpu_seconds", "rss_bytes", "connections"):
                values[f"worker.{row['worker']}.{name}"] = row[name]
        for (point, plugin), total in self.hooks.items():
            for name in (*HOOK_COUNTS, "p99_ms"):
                values[f"hook.{point}.{plugin}.{name}"] = total[name]
        return values

    def emqx_metrics(self) -> dict:
        """The EMQX 4 metric names this broker counts."""
        c, g = self.counters, self.gauges
        received, sent = self.packets("received"), self.packets("sent")
        values = {
            "bytes.received": c["bytes_received"], "bytes.sent": c["bytes_sent"],
            "messages.received": c["messages_received"], "messages.sent": c["messages_sent"],
            "packets.received": sum(received.values()), "packets.sent": sum(sent.values()),
            **{f"packets.{kind}.received": received[kind] for kind in FROM_CLIENTS},
            **{f"packets.{kind}.sent": sent[kind] for kind in TO_CLIENTS},
            "messages.dropped": c["messages_dropped"],
            "delivery.dropped": c["messages_dropped"] - c.get("dropped_no_route", 0),
            "messages.dropped.no_subscribers": 0, "delivery.dropped.queue_full": 0,
            "delivery.dropped.expired": 0, "delivery.dropped.too_large": 0,
            "messages.retained": g["retained"],
            "client.connect": received["connect"],
            "client.connected": c["clients_total_connects"],
            "session.created": c["clients_total_connects"],
        }
        for reason, count in self.dropped().items():
            values[EMQX_DROPS[reason]] += count
        return values


def _sum_into(total: dict, values: dict) -> None:
    for name, value in values.items():
        total[name] = total.get(name, 0) + value


async def node_metrics(plane) -> NodeMetrics:
    rows, gathered = await plane.ask_rows("metrics.get")
    metrics = NodeMetrics(plane.node_name, failed=gathered.failures())
    for worker in sorted(gathered.answers):
        metrics.add(worker, gathered.answers[worker])
    return metrics
