"""A plugin's health: its call statistics and its circuit breaker.

`PluginStats` counts calls, failures, timeouts, notify drops and breaker
skips of one plugin at one hook point (each chain provider has its own, so
counting per hook point costs the chains nothing), and keeps the last 1,024
latency samples for the mean and p99 that ``actormq plugin show`` prints;
`PluginStats.summed` adds a plugin's hook points up.

`Breaker` stops calling a plugin that keeps failing: after `failures`
failures in a row it opens for `open_for` seconds (the plugin is not called;
its failure policy decides), then lets one call through; a success closes
it. A failure is logged once per burst — the first of a run of failures,
with the plugin's name and the error, and again when the breaker opens;
the rest are only counted — so a dead backend does not flood the log.
"""

from __future__ import annotations

import logging
import time
from array import array
from dataclasses import dataclass

log = logging.getLogger("actormq.hooks")

_LATENCY_SAMPLES = 1024


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """`plugins.breaker.failures` in a row open the breaker for `plugins.breaker.open_for` s."""

    failures: int = 5
    open_for: float = 10.0


class PluginStats:
    """Counters and recent latencies of one plugin at one hook point."""

    __slots__ = ("calls", "failures", "timeouts", "dropped", "skipped", "healthy", "_latencies",
                 "_next")

    def __init__(self) -> None:
        self.calls = 0
        self.healthy = True     # no failure in a row, breaker closed: the chains' fast path
        self.failures = 0
        self.timeouts = 0
        self.dropped = 0        # notify events that found the plugin's queue full
        self.skipped = 0        # calls not made because the breaker was open
        self._latencies = array("d")
        self._next = 0

    def sample(self, seconds: float) -> None:
        """One call's latency (calls themselves are counted by the caller)."""
        samples = self._latencies
        if len(samples) < _LATENCY_SAMPLES:
            samples.append(seconds)
        else:
            samples[self._next] = seconds
            self._next = (self._next + 1) % _LATENCY_SAMPLES

    def latency(self) -> tuple[float, float]:
        """Mean and 99th percentile of the recent calls, in seconds (0, 0 before any)."""
        samples = sorted(self._latencies)
        if not samples:
            return 0.0, 0.0
        return sum(samples) / len(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]

    @classmethod
    def summed(cls, parts) -> PluginStats:
        """One plugin's totals over its hook points (latency over all their samples)."""
        total = cls()
        for part in parts:
            total.calls += part.calls
            total.failures += part.failures
            total.timeouts += part.timeouts
            total.dropped += part.dropped
            total.skipped += part.skipped
            total.healthy = total.healthy and part.healthy
            total._latencies.extend(part._latencies)
        return total

    def as_dict(self) -> dict:
        mean, p99 = self.latency()
        return {"calls": self.calls, "failures": self.failures, "timeouts": self.timeouts,
                "dropped": self.dropped, "skipped": self.skipped,
                "mean_ms": round(mean * 1000, 3), "p99_ms": round(p99 * 1000, 3)}


class Breaker:
    """The circuit breaker of one plugin (see the module docstring)."""

    __slots__ = ("name", "settings", "points", "chains", "in_a_row", "open_until")

    def __init__(self, name: str, settings: BreakerSettings, points: dict) -> None:
        self.name = name
        self.settings = settings
        self.points = points        # hook point -> PluginStats of the plugin there
        self.chains: list = []      # the chains the plugin is in: a failure slows them down
        self.in_a_row = 0
        self.open_until = 0.0

    def closed(self, stats: PluginStats) -> bool:
        """May the plugin be called now? (counts a skip in `stats` when not)"""
        if not self.open_until:
            return True
        if time.monotonic() >= self.open_until:
            self.open_until = 0.0       # half open: one call decides
            return True
        stats.skipped += 1
        return False

    def succeeded(self) -> None:
        if self.in_a_row:
            log.warning("plugin %s works again after %d failure(s)", self.name, self.in_a_row)
            self.in_a_row = 0
            self.open_until = 0.0
            for stats in self.points.values():
                stats.healthy = True

    def failed(self, stats: PluginStats, point_name: str, error: BaseException | str,
               timed_out: bool = False) -> None:
        """A failure of the call `stats` counts (the plugin at `point_name`)."""
        stats.failures += 1
        for part in self.points.values():
            part.healthy = False
        for chain in self.chains:
            chain.slow_down()
        if timed_out:
            stats.timeouts += 1
        self.in_a_row += 1
        if self.in_a_row == 1:
            log.error("plugin %s failed at %s: %s", self.name, point_name, _describe(error))
        if self.in_a_row >= self.settings.failures and not self.open_until:
            self.open_until = time.monotonic() + self.settings.open_for
            log.error("plugin %s failed %d times in a row (last at %s: %s); not called for %gs",
                      self.name, self.in_a_row, point_name, _describe(error),
                      self.settings.open_for)


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
