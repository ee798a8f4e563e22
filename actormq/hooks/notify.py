"""The notify queue of one plugin: events wait here for its notify hooks.

Notify hooks are observers; they must never delay the client whose event
they observe. `Chain.notify` puts ``(provider, args)`` on the plugin's
bounded queue and returns; the plugin's own task on the worker's loop takes
the events in order and calls the hook (awaiting it, within the plugin's
timeout, when it is ``async def``). A full queue drops the new event and
counts it in the hook point's `PluginStats.dropped`; a failing hook is handled by the
plugin's breaker like any failure (its failure policy does not apply:
there is nothing to decide).
"""

from __future__ import annotations

import asyncio
from collections import deque

from actormq.hooks.chains import FAILED, Pending


class NotifyQueue:
    """Bounded FIFO of one plugin's pending notify events and the task that runs them."""

    __slots__ = ("limit", "items", "_waiter", "_task")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: deque = deque()
        self._waiter: asyncio.Future | None = None
        self._task: asyncio.Task | None = None

    def put(self, provider, args: tuple) -> None:
        items = self.items
        if len(items) >= self.limit:
            provider.stats.dropped += 1
            return
        items.append((provider, args))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _run(self) -> None:
        items = self.items
        loop = asyncio.get_running_loop()
        while True:
            while items:
                provider, args = items.popleft()
                await _call(provider, args)
            self._waiter = loop.create_future()
            await self._waiter
            self._waiter = None

    async def drain(self) -> None:
        """Wait until every queued event has been handled (stop, reload, tests)."""
        while self.items or (self._waiter is None and self._task is not None
                             and not self._task.done()):
            await asyncio.sleep(0.001)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


async def _call(provider, args: tuple) -> None:
    answer = provider.call(args)
    if type(answer) is Pending:
        answer = await provider.settle(answer)
    if answer is not FAILED and provider.breaker.in_a_row:
        provider.breaker.succeeded()
