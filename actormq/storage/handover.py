"""Handover: how the worker's event loop hands its writes to the writer thread
(storage.sync = on) so that the two do not fight for the GIL row by row.

py-lmdb releases the GIL around every put (putmulti too) and LMDB wants a
write transaction begun, filled and committed by one thread. A writer thread
that puts rows while the loop runs Python waits for the GIL at every row
(6-11 us a row, 0.5-1 us uncontended), and the loop loses it at each of its
own system calls. So at the end of a loop turn that wrote, when the writer is
idle, the loop hands the batch over and *parks* (blocks with the GIL
released) until the writer has begun its transaction and put the rows, then
goes on while the writer flushes (fsync, GIL released) and settles. Writes
issued meanwhile form the next batch (group commit), which the writer
commits as soon as it is done, without waiting for the loop's turn to end:
the loop, busy meanwhile, is not parked for it. The writer is idle again
once a commit finds nothing more to take.

The loop never waits for a flush: it waits for the transaction's begin at most
BEGIN_WAIT (LMDB's write lock may be held by another worker's commit) and for
the puts at most APPLY_WAIT; past either it goes on and the writer finishes
on its own, as it would without the hand-over.
"""

from __future__ import annotations

import threading

import pykka

from actormq.storage.writer import CommitDue, PendingWrites

BEGIN_WAIT = 0.0005   # s the loop waits for the writer to begin its transaction
APPLY_WAIT = 0.005    # s it then waits for the rows to be put


class Parked:
    """The loop's wait for one hand-over; the writer tells it (CommitProgress)."""

    __slots__ = ("_begun", "_applied", "_begun_told", "_applied_told", "_handover")

    def __init__(self, handover: Handover) -> None:
        self._begun = threading.Lock()
        self._applied = threading.Lock()
        self._begun.acquire()
        self._applied.acquire()
        self._begun_told = self._applied_told = False
        self._handover = handover

    # --- the writer's thread --------------------------------------------------------

    def begun(self) -> None:
        if not self._begun_told:
            self._begun_told = True
            self._begun.release()

    def applied(self) -> None:
        self.begun()
        if not self._applied_told:
            self._applied_told = True
            self._applied.release()

    def more(self) -> bool:
        """After a commit: whether writes issued meanwhile are to be committed
        too; when there are none the hand-over is over."""
        return self._handover.writer_goes_on()

    def done(self) -> None:
        """The hand-over is over (or failed): nobody waits any more."""
        self.applied()
        self._handover.writer_done()

    # --- the loop's thread ------------------------------------------------------------

    def wait(self, begin_wait: float, apply_wait: float) -> bool:
        """Block until the rows are put; False when a wait ran out."""
        return self._begun.acquire(timeout=begin_wait) and self._applied.acquire(timeout=apply_wait)


class Handover:
    """Hands `pending`'s batches from `loop` to `writer`, one commit at a time."""

    def __init__(self, writer: pykka.ActorRef, pending: PendingWrites, loop) -> None:
        self._writer = writer
        self._pending = pending
        self._loop = loop
        self._lock = threading.Lock()
        self._busy = False          # a hand-over is with the writer
        self.handed = 0             # hand-overs so far ...
        self.cut_short = 0          # ... and those whose wait ran out

    def turn_ended(self) -> None:
        """In the loop's thread, at the end of a turn that wrote: hand the batch
        to an idle writer (a busy one commits it when done)."""
        with self._lock:
            if self._busy or not self._pending.unbatched:
                return
            self._busy = True
        parked = Parked(self)
        try:
            self._writer.tell(CommitDue(parked))
        except pykka.ActorDeadError:   # stopped: close commits what is left
            self._busy = False
            return
        self.handed += 1
        if not parked.wait(BEGIN_WAIT, APPLY_WAIT):
            self.cut_short += 1

    def writer_goes_on(self) -> bool:
        """In the writer's thread after a commit: True when writes wait (it
        commits them at once); otherwise it is idle from now on."""
        with self._lock:
            if self._pending.unbatched:
                return True
            self._busy = False
            return False

    def writer_done(self) -> None:
        with self._lock:
            self._busy = False
