"""Background lanes: bounded queues drained by their own tasks, for events that must never wait.

`Lanes(deliver, queue_size, lanes)` keeps, per target (an endpoint URL, a
gRPC server), a few lanes — a bounded queue and the task that empties it
by awaiting `deliver(target, item)`. `put(target, item, key)` never waits:
the item goes to the lane of its key (a client id, so one client's events
stay in order) or, when that lane is full, is dropped and counted; so is
what is still queued or on its way when the lanes are closed. With a
`gate` (the notification sender's CPU budget), each delivery first awaits it.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import Counter
from typing import Any, Awaitable, Callable, Optional

log = logging.getLogger("actormq.webhooks")

Deliver = Callable[[str, Any], Awaitable[bool]]
Gate = Optional[Callable[[], Awaitable[None]]]


class Lanes:
    """Bounded per-target, per-key-lane queues and their sender tasks."""

    def __init__(self, deliver: Deliver, queue_size: int, lanes: int = 4, gate: Gate = None) -> None:
        self.deliver = deliver
        self.gate = gate
        self.queue_size = queue_size
        self.lanes = max(1, lanes)
        self.counters: Counter[tuple[str, str]] = Counter()  # (target, sent|failed|dropped)
        self._queues: dict[str, list[asyncio.Queue]] = {}
        self._tasks: list[asyncio.Task] = []
        self._in_flight = 0

    def put(self, target: str, item: Any, key: str = "") -> bool:
        """Queue one item; False (and counted as dropped) when its lane is full."""
        lanes = self._queues.get(target)
        if lanes is None:
            lanes = self._start(target)
        queue = lanes[zlib.crc32(key.encode()) % len(lanes)] if len(lanes) > 1 else lanes[0]
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            self.counters[target, "dropped"] += 1
            return False
        return True

    def drop(self, target: str) -> None:
        """Count an item that was not even queued (its target is known to be down)."""
        self.counters[target, "dropped"] += 1

    def dropped(self, target: str, count: int) -> None:
        """Count `count` items that were not even queued."""
        self.counters[target, "dropped"] += count

    def _start(self, target: str) -> list[asyncio.Queue]:
        size = max(1, self.queue_size // self.lanes)
        lanes: list[asyncio.Queue] = [asyncio.Queue(size) for _ in range(self.lanes)]
        self._queues[target] = lanes
        loop = asyncio.get_running_loop()
        self._tasks += [loop.create_task(self._sender(target, queue)) for queue in lanes]
        return lanes

    async def _sender(self, target: str, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            self._in_flight += 1
            try:
                if self.gate is not None:
                    await self.gate()
                delivered = await self.deliver(target, item)
            except asyncio.CancelledError:
                self.counters[target, "dropped"] += 1       # stopped before it went out
                raise
            except Exception as exc:     # a sender task must survive anything one item does
                log.warning("%s: sending failed: %s", target, exc)
                delivered = False
            finally:
                self._in_flight -= 1
            self.counters[target, "sent" if delivered else "failed"] += 1

    def pending(self) -> int:
        return self._in_flight + sum(queue.qsize() for lanes in self._queues.values() for queue in lanes)

    async def drain(self, timeout_s: float = 1.0) -> None:
        """Give queued items up to `timeout_s` to go out (used at stop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.pending() and loop.time() < deadline:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Stop the sender tasks; what they had not sent yet is counted as dropped."""
        for target, lanes in self._queues.items():
            left = sum(queue.qsize() for queue in lanes)
            if left:
                self.counters[target, "dropped"] += left
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._queues.clear()
