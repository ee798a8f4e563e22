"""What a benchmark run prints: the live progress line on stderr (once a
second) and the final `Summary`, as text for people or JSON for machines.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from dataclasses import asdict, dataclass, field

from actormq.bench.stats import LatencyHistogram


def cpu_seconds() -> float:
    """User + system CPU time this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def latency_summary(histogram: LatencyHistogram, unit_ns: int = 1000) -> dict | None:
    """p50/p90/p99/p99.9/max/mean of a nanosecond histogram, in `unit_ns` units."""
    if not histogram.total:
        return None
    values = {f"p{q:g}": histogram.percentile(q) for q in (50, 90, 99, 99.9)}
    values["max"] = histogram.max()
    values["mean"] = histogram.mean()
    return {k: round(v / unit_ns, 1) for k, v in values.items()}


@dataclass(frozen=True, slots=True)
class Summary:
    """The result of one `actormq bench` command.

    `rate` is the command's main figure: messages sent per second (pub),
    received per second (sub and latency, first to last message) or
    connections per second (conn). Latencies are in microseconds (messages)
    or milliseconds (connections).
    """

    command: str
    clients: int
    connected: int
    version: int
    qos: int = 0
    size: int = 0
    elapsed_s: float = 0.0
    rate: float | None = None
    sent: int = 0
    completed: int = 0
    received: int = 0
    duplicates: int = 0
    missing: int = 0
    latency_us: dict | None = None
    connect_ms: dict | None = None
    connect_to_last_s: float | None = None
    cpu_s: float = 0.0
    errors: list = field(default_factory=list)

    @property
    def messages(self) -> int:
        return self.sent if self.command == "pub" else self.received

    @property
    def cpu_s_per_million(self) -> float | None:
        return round(self.cpu_s / self.messages * 1e6, 2) if self.messages else None

    @property
    def cpu_percent(self) -> float | None:
        return round(100 * self.cpu_s / self.elapsed_s, 1) if self.elapsed_s else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["unique"] = self.received - self.duplicates
        data["cpu_s_per_million"] = self.cpu_s_per_million
        data["cpu_percent"] = self.cpu_percent
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_text(self) -> str:
        traffic = f"QoS {self.qos}, {self.size} B, " if self.command != "conn" else ""
        lines = [f"{self.command}: {self.connected}/{self.clients} clients, "
                 f"MQTT {'5' if self.version == 5 else '3.1.1'}, {traffic}{self.elapsed_s:.2f} s"]
        if self.command in ("pub", "latency"):
            lines.append(f"  sent       {self.sent:,}"
                         + (f"  ({_rate(self.rate)} msg/s)" if self.command == "pub" else "")
                         + (f", completed {self.completed:,}" if self.qos else ""))
        if self.command in ("sub", "latency"):
            lines.append(f"  received   {self.received:,}  ({_rate(self.rate)} msg/s)")
            lines.append(f"  loss       {self.missing:,}   duplicates {self.duplicates:,}")
            if self.connect_to_last_s is not None:
                lines.append(f"  connect -> last message  {self.connect_to_last_s:.3f} s")
        if self.latency_us:
            lines.append("  latency µs " + _percentiles(self.latency_us))
        if self.connect_ms:
            lines.append(f"  connect    {_rate(self.rate if self.command == 'conn' else None)}"
                         " conn/s, ms " + _percentiles(self.connect_ms))
        lines.append(f"  cpu        {self.cpu_s:.2f} s ({self.cpu_percent or 0:.0f} %)"
                     + (f", {self.cpu_s_per_million:.2f} s per million messages"
                        if self.cpu_s_per_million is not None else ""))
        lines.extend(f"  error      {error}" for error in self.errors[:5])
        return "\n".join(lines)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _percentiles(values: dict) -> str:
    return "  ".join(f"{k} {v:,}" for k, v in values.items())


class Progress:
    """Prints, once a second, the per-second change of some counters.

    `counters` is a callable returning {name: cumulative count}.
    """

    def __init__(self, label: str, counters, stream=None, interval: float = 1.0) -> None:
        self.label = label
        self.counters = counters
        self.stream = stream or sys.stderr
        self.interval = interval

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started = last_time = loop.time()
        last = self.counters()
        while True:
            await asyncio.sleep(self.interval)
            now, current = loop.time(), self.counters()
            span = max(now - last_time, 1e-9)
            rates = "  ".join(f"{name} {(current[name] - last.get(name, 0)) / span:,.0f}/s"
                              for name in current)
            totals = "  ".join(f"{name} {value:,}" for name, value in current.items())
            print(f"[{self.label} {now - started:5.1f}s] {rates}  | {totals}",
                  file=self.stream, flush=True)
            last_time, last = now, current
