"""Node-wide numbers from every worker's `metrics.get`: counters summed,
gauges summed (node-wide ones taken once), storage and bus usage, and the
per-worker process rows. `/api/v4/metrics`, `/api/v4/stats`, Prometheus
`/metrics` and `actormq metrics show` all read this one aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actormq.mgmt.worker_stats import NODE_WIDE

_MAX_KEYS = ("map_size", "live_bytes")


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
    hooks: dict = field(default_factory=dict)       # plugin -> summed health over workers

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
        total = self.hooks.setdefault(row["name"], {"hooks": row["hooks"], "calls": 0, "failures": 0,
                                                    "timeouts": 0, "dropped": 0, "skipped": 0,
                                                    "latency_sum": 0.0, "p99_ms": 0.0})
        for name in ("calls", "failures", "timeouts", "dropped", "skipped"):
            total[name] += row[name]
        total["latency_sum"] += row["mean_ms"] * row["calls"] / 1000     # for a calls-weighted mean
        total["p99_ms"] = max(total["p99_ms"], row["p99_ms"])

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
        for plugin, total in self.hooks.items():
            for name in ("calls", "failures", "timeouts", "dropped", "skipped", "p99_ms"):
                values[f"plugin.{plugin}.{name}"] = total[name]
        return values

    def emqx_metrics(self) -> dict:
        """The EMQX 4 metric names this broker counts."""
        c, g = self.counters, self.gauges
        return {
            "bytes.received": c["bytes_received"], "bytes.sent": c["bytes_sent"],
            "messages.received": c["messages_received"], "messages.sent": c["messages_sent"],
            "packets.publish.received": c["messages_received"],
            "packets.publish.sent": c["messages_sent"],
            "messages.dropped": c["messages_dropped"],
            "delivery.dropped": c["messages_dropped"],
            "delivery.dropped.queue_full": c["messages_dropped"],
            "messages.retained": g["retained"],
            "client.connect": c["clients_total_connects"],
            "client.connected": c["clients_total_connects"],
            "packets.connect.received": c["clients_total_connects"],
            "packets.connack.sent": c["clients_total_connects"],
            "session.created": c["clients_total_connects"],
        }


def _sum_into(total: dict, values: dict) -> None:
    for name, value in values.items():
        total[name] = total.get(name, 0) + value


async def node_metrics(plane) -> NodeMetrics:
    rows, gathered = await plane.ask_rows("metrics.get")
    metrics = NodeMetrics(plane.node_name, failed=gathered.failures())
    for worker in sorted(gathered.answers):
        metrics.add(worker, gathered.answers[worker])
    return metrics
