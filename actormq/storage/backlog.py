"""WriterBacklog: holds publishers back while a store's writer is behind.

The store never blocks the event loop. While its writer is behind
(`behind`), a publish that wrote to it names the backlog among the congested
parties of its outcome, and the connection whose publish wrote asks it to
`block` it, as a congested session's valve does (actors/flow).
The publisher is held back (`hold_back`: its packets wait, in order) until the
writer has caught up (`when_room`), then every publisher held goes on at once.
Peers are not held for it: their publishers wait for this worker's durability
answers anyway.
"""

from __future__ import annotations


class WriterBacklog:
    """The publishers one backlogged store holds back; lives on the worker's loop."""

    def __init__(self, store, loop) -> None:
        self._store = store
        self._loop = loop
        self._held: set = set()
        pending = store.pending_writes
        # whether the store's writer is backlogged (a write now holds its publisher):
        # read for every durable message, so an attribute the writes keep up to date
        self.behind: bool = pending.backlogged
        pending.watch_backlog(self._note_behind)

    def _note_behind(self, behind: bool) -> None:
        self.behind = behind

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
