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
may also run in any thread (flush, close), one caller at a time.
"""

from __future__ import annotations

import threading

from actormq.storage.writer import Committer, PendingWrites


class LoopCommits:
    """Commits one store's pending writes on `loop`, once per turn that wrote."""

    def __init__(self, committer: Committer, pending: PendingWrites, loop, commit_interval: float) -> None:
        self._committer = committer
        self._pending = pending
        self._loop = loop
        self._thread = threading.get_ident()
        self._interval = max(0.0, commit_interval)
        self._lock = threading.Lock()
        self._closed = False

    def batch_started(self) -> None:
        """The first write since the last commit: commit at the end of this turn."""
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._schedule)
        else:
            self._schedule()

    def _schedule(self) -> None:
        if self._interval:
            self._loop.call_later(self._interval, self.commit_all)
        else:
            self._loop.call_soon(self.commit_all)

    def commit_all(self) -> None:
        """Commit everything pending now, in the calling thread."""
        inline = self._loop if threading.get_ident() == self._thread else None
        with self._lock:
            if self._closed:
                return
            while True:
                ops, more = self._pending.take(0)
                if ops:
                    self._committer.commit(ops, inline)
                if not more:
                    return

    def close(self) -> None:
        """Commit what is pending; later scheduled commits do nothing."""
        self.commit_all()
        with self._lock:
            self._closed = True
