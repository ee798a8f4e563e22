"""LoopCommits: the worker's event loop commits its own writes (storage.sync = off).

Without an fsync an LMDB commit of a loop turn's writes takes tens to a few
hundred microseconds: less than handing them to the writer thread costs, whose
every wake-up and every return from LMDB waits for the GIL the loop holds, and
whose answers wake the loop once more. So with sync off the first write of a
batch schedules one commit at the end of the loop's turn (`call_soon`, or
`call_later` with a commit interval), which takes every write the turn issued
(group commit by construction: what arrives while a turn runs forms the next
batch) and runs the loop's durability callbacks at once, so the PUBACKs go out
in the same turn as the commit. With sync on the fsync must not stop the loop:
the writer thread keeps committing (see writer.py).

Writes issued in another thread schedule the commit thread-safely; `commit_all`
may also run in any thread (flush, close), one caller at a time. `issue`, run
first by a commit in the loop's thread, hands over the writes the loop has
deferred to the end of its turn (see LmdbStore.defer); one commit is
scheduled per turn however often a batch starts in it.

With the write-ahead log (checkpoint.py) a commit is the append of a record
to the log, and the loop also runs the checkpoints into LMDB, on a timer
(`checkpoint`), or at once when the log is large or another process is about
to read the rows (`store_soon`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from actormq.storage.checkpoint import IDLE_SECONDS
from actormq.storage.writer import Committer, PendingWrites


class LoopCommits:
    """Commits one store's pending writes on `loop`, once per turn that wrote."""

    def __init__(self, committer: Committer, pending: PendingWrites, loop, commit_interval: float,
                 issue: Callable[[], object] | None = None) -> None:
        self._committer = committer
        self._issue = issue
        self._scheduled = False
        self._pending = pending
        self._loop = loop
        self._thread = threading.get_ident()
        self._interval = max(0.0, commit_interval)
        self._lock = threading.Lock()
        self._closed = False
        if hasattr(committer, "schedule"):
            committer.schedule = self._schedule_checkpoint

    def batch_started(self) -> None:
        """The first write since the last commit: commit at the end of this turn."""
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._schedule)
        elif not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self._scheduled = True
        if self._interval:
            self._loop.call_later(self._interval, self._scheduled_commit)
        else:
            self._loop.call_soon(self._scheduled_commit)

    def _scheduled_commit(self) -> None:
        self._scheduled = False
        self.commit_all()

    def commit_all(self) -> None:
        """Commit everything pending now, in the calling thread."""
        inline = self._loop if threading.get_ident() == self._thread else None
        if inline is not None and self._issue is not None:
            self._issue()
        with self._lock:
            if self._closed:
                return
            while True:
                ops, more = self._pending.take(0)
                if ops:
                    self._committer.commit(ops, inline)
                if not more:
                    return

    def _schedule_checkpoint(self) -> None:
        if threading.get_ident() == self._thread:
            self._loop.call_later(IDLE_SECONDS, self._tick)
        else:
            self._loop.call_soon_threadsafe(self._loop.call_later, IDLE_SECONDS, self._tick)

    def _tick(self) -> None:
        with self._lock:
            if not self._closed:
                self._committer.tick(self._loop)

    def checkpoint(self) -> None:
        """Apply what the log holds to LMDB now, in the calling thread."""
        inline = self._loop if threading.get_ident() == self._thread else None
        with self._lock:
            if not self._closed:
                self._committer.checkpoint(inline)

    def store_soon(self) -> None:
        """Commit and checkpoint everything pending in the loop's next turn."""
        def store() -> None:
            self.commit_all()
            self.checkpoint()
        self._loop.call_soon_threadsafe(store)

    def close(self) -> None:
        """Commit what is pending; later scheduled commits do nothing."""
        self.commit_all()
        if hasattr(self._committer, "checkpoint"):
            self.checkpoint()
        with self._lock:
            self._closed = True
