"""The keepalive sweep of a worker: every connection past its deadline is
closed, and a sweep over many connections lets the event loop serve other
clients between slices of SWEEP_SLICE instead of holding them all back."""

from __future__ import annotations

import asyncio
import time

from actormq.actors import upkeep
from actormq.actors.upkeep import SWEEP_SLICE, Upkeep


class FakeConnection:
    def __init__(self, events: list, number: int, silent_for: float) -> None:
        self.events = events
        self.number = number
        self.keepalive_deadline = 10
        self.session = object()
        self.last_seen = time.monotonic() - silent_for
        self.accepted_at = self.last_seen
        self.closed = False

    def keepalive_expired(self) -> None:
        self.closed = True
        self.events.append(("expired", self.number))


class FakeDrops:
    def report(self) -> None:
        pass


class Worker(Upkeep):
    def __init__(self, connections) -> None:
        self.connections = set(connections)
        self.drops = FakeDrops()


def test_sweep_closes_the_silent_and_lets_the_loop_in_between_slices(monkeypatch):
    monkeypatch.setattr(upkeep, "KEEPALIVE_SWEEP_SECONDS", 0.001)
    events: list = []
    count = 3 * SWEEP_SLICE + 7
    silent = [FakeConnection(events, n, silent_for=60) for n in range(count)]
    alive = [FakeConnection(events, -1 - n, silent_for=0) for n in range(50)]
    worker = Worker(silent + alive)

    async def run() -> None:
        sweep = asyncio.ensure_future(worker._keepalive_sweep())
        while sum(1 for kind, _ in events if kind == "expired") < count:
            events.append(("loop", None))
            await asyncio.sleep(0)
        sweep.cancel()

    asyncio.run(asyncio.wait_for(run(), 10))
    expired = [number for kind, number in events if kind == "expired"]
    assert sorted(expired) == list(range(count))            # each once, none of the alive
    at = [i for i, (kind, _) in enumerate(events) if kind == "expired"]
    first, last = at[0], at[-1]
    turns_during_sweep = sum(1 for kind, _ in events[first:last] if kind == "loop")
    assert turns_during_sweep >= count // SWEEP_SLICE
