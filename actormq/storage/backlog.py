"""WriterBacklog: holds publishers back while a store's writer is behind.

The store never blocks the event loop. When its writer falls behind it tells
(`on_backlog`, after each write issued meanwhile): the backlog puts itself in
the broker's list of congested parties, which the connection whose publish
wrote asks to `block` it, as a congested session's valve does (actors/flow).
The publisher is held back (`hold_back`: its packets wait, in order) until the
writer has caught up (`when_room`), then every publisher held goes on at once.
Peers are not held for it: their publishers wait for this worker's durability
answers anyway.
"""

from __future__ import annotations

import threading


class WriterBacklog:
    """The publishers one backlogged store holds back; lives on the worker's loop."""

    def __init__(self, store, loop, congested: list) -> None:
        self._store = store
        self._loop = loop
        self._congested = congested
        self._loop_thread = threading.get_ident()
        self._held: set = set()
        store.on_backlog(self._told)

    def _told(self) -> None:
        # a durability callback that writes runs in the writer's thread: the
        # publishers are reached from the loop's thread only
        if threading.get_ident() == self._loop_thread and self not in self._congested:
            self._congested.append(self)

    def block(self, publisher) -> None:
        """Hold `publisher` back until the writer has caught up."""
        if publisher in self._held:
            return
        self._held.add(publisher)
        publisher.hold_back()
        if len(self._held) == 1:
            self._store.when_room(lambda: self._loop.call_soon_threadsafe(self._release))

    def _release(self) -> None:
        held, self._held = self._held, set()
        for publisher in held:
            publisher.go_on()
