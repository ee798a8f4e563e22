"""The notification sender's CPU budget: how much CPU it may take while the machine is busy.

The sender runs at SCHED_IDLE, so it never takes a CPU another task wants;
but unbounded, it fills every idle moment of every core, and on a small
machine that alone cost a saturated worker about 13 % of its throughput
(shared caches, wake-ups, the kernel's loopback TCP work in the sender's
system calls), for the 1 % of the events it could deliver. `CpuBudget`
bounds it: the sender may use

- ``share`` of each core it may run on (`webhooks.sender_cpu_share`,
  `exhook.sender_cpu_share`), always, and
- more when the rest of the machine leaves CPU to spare: everything the
  other processes leave idle beyond one whole core (`SPARE_CORES`).

So a quiet broker, or a big server with idle cores, is never throttled,
and a busy small one gives its sender ``share`` × cores. The CPU of the
other processes is measured (the CPU time of the cores the sender may
run on, less its own) every `RATE_PERIOD`; the sender's own CPU time is a
token bucket (`burst` seconds of CPU at most saved up). Over the budget,
`wait()` closes the gate until the bucket is full again (one timer, however
many lanes wait): the sender sends in bursts of about `burst` of CPU and
sleeps between them; what it does not send meanwhile waits in its bounded
queue, and what the worker cannot hand over for want of credit is dropped
and counted there.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Callable

import psutil

SPARE_CORES = 1.0       # CPU the other processes must leave idle before the sender may go past its share
RATE_PERIOD = 0.5       # s between measurements of the rest of the machine
BURST = 0.02            # s of CPU the sender may save up (its longest run before a pause)
LONGEST_PAUSE = 1.0     # s: a costly delivery (a TLS handshake, a first call) is not paid back longer


def cores_to_run_on() -> list[int]:
    """The CPUs this process may run on (its affinity; all of them where that is unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(psutil.cpu_count() or 1))


def busy_seconds(cores: list[int]) -> float:
    """CPU time the cores `cores` spent on anything but idling so far (steal counts as busy:
    a hypervisor's share is no CPU to spare)."""
    times = psutil.cpu_times(percpu=True)
    busy = 0.0
    for core in cores:
        if core < len(times):
            spent = times[core]
            busy += sum(spent) - spent.idle - getattr(spent, "iowait", 0.0)
    return busy


class CpuBudget:
    """A token bucket of the sender's own CPU time, filled at the rate the machine allows."""

    def __init__(self, share: float, *, own_cpu: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic,
                 cores: Callable[[], list[int]] = cores_to_run_on,
                 busy: Callable[[list[int]], float] = busy_seconds, burst: float = BURST) -> None:
        self.share = share
        self.burst = burst
        self._own_cpu, self._clock, self._cores, self._busy = own_cpu, clock, cores, busy
        self._count = len(cores())
        self.rate = share * self._count     # cores' worth of CPU per second the sender may use now
        self.balance = burst                # s of CPU it may still use before a pause
        self._at = self._rate_at = clock()
        self._own = self._rate_own = own_cpu()
        self._rate_busy = busy(cores())
        self._open = asyncio.Event()
        self._open.set()

    def pause(self) -> float:
        """Account for the CPU used since the last call; 0 while within the budget, else the
        seconds until the bucket is full again."""
        now, own = self._clock(), self._own_cpu()
        balance = self.balance + (now - self._at) * self.rate - (own - self._own)
        self.balance = min(self.burst, max(balance, -LONGEST_PAUSE * self.rate))
        self._at, self._own = now, own
        if now - self._rate_at >= RATE_PERIOD:
            self._measure(now, own)
        return (self.burst - self.balance) / self.rate if self.balance < 0 else 0.0

    def _measure(self, now: float, own: float) -> None:
        """The rate from what the other processes used of the sender's cores since the last time."""
        cores = self._cores()
        busy = self._busy(cores)
        elapsed = now - self._rate_at
        others = max(0.0, (busy - self._rate_busy) - (own - self._rate_own)) / elapsed
        self._count = len(cores)
        self.rate = max(self.share * self._count, self._count - others - SPARE_CORES)
        self._rate_at, self._rate_own, self._rate_busy = now, own, busy

    async def wait(self) -> None:
        """Return once the sender is within its budget (at once, mostly)."""
        while True:
            if not self._open.is_set():
                await self._open.wait()
                continue
            seconds = self.pause()
            if seconds <= 0:
                return
            self._open.clear()
            asyncio.get_running_loop().call_later(seconds, self._open.set)


def budget_for(share: float) -> CpuBudget | None:
    """The budget of a sender with `share` of each core; None (no budget) when `share` >= 1."""
    return CpuBudget(share) if share < 1 else None
