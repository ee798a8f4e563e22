"""The outcomes of one client's PUBLISHes that wait for an answer, applied in arrival order.

A `message.publish` fold that waits (an ExHook `OnMessagePublish` decision,
a plugin's coroutine) would otherwise stop the client's packets until it is
answered: one round trip per message. Instead the Connection keeps taking
the client's next PUBLISHes and starts their folds too, up to DEPTH at a
time, and `Pipeline` applies the outcomes strictly in the order the
PUBLISHes came — a later message is never routed (nor acknowledged) before
an earlier one, whichever answer comes first. An outcome that is known at
once (a refusal, a fold that did not wait) queues behind the ones still
waiting. Any other packet of the client waits, in order, until the pipeline
is empty (the Connection holds it, as for a pending authorization).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable

from actormq.hooks.results import DROP

DEPTH = 32      # outcomes a client may have waiting before its packets are held


class Pipeline:
    """One client's waiting outcomes: [answer, then] in arrival order; `then(value)` is
    called with the answer's value once it and every outcome before it are there."""

    __slots__ = ("conn", "entries", "held_back")

    def __init__(self, conn) -> None:
        self.conn = conn
        self.entries: deque[list] = deque()
        self.held_back = False      # backpressure (flow): take no new PUBLISH until go_on

    def add(self, answer: Any, then: Callable[[Any], None]) -> None:
        self.entries.append([answer, then])
        if isinstance(answer, asyncio.Future):
            answer.add_done_callback(self._moved)

    def open(self) -> bool:
        """Whether the client's next PUBLISH may start now."""
        return len(self.entries) < DEPTH and not self.held_back

    def _moved(self, _done: asyncio.Future) -> None:
        conn = self.conn
        entries = self.entries
        while entries and not conn.closed:
            entry = entries[0]
            answer = entry[0]
            if isinstance(answer, asyncio.Future):
                if not answer.done():
                    return
                value = _value(answer)
                if isinstance(value, asyncio.Future):     # answered with another wait: keep the place
                    entry[0] = value
                    value.add_done_callback(self._moved)
                    return
            else:
                value = answer
            entries.popleft()
            conn.act_on(entry[1], value)
        conn.unthrottle()       # held PUBLISHes join; once empty, the client goes on


def _value(done: asyncio.Future) -> Any:
    """A cancelled wait (the broker stopping) or a failed one drops the message, as a fold
    that failed does."""
    if done.cancelled() or done.exception() is not None:
        return DROP
    return done.result()
