"""LoggedCommitter: with the write-ahead log (`storage.log = on`) a batch of
writes is made durable by one record in the worker's log (log.py), and LMDB is
a checkpoint of that log, written in large batches off the acknowledgement's
path.

`commit` appends a batch (the writes of a loop turn) to the log and runs the
durability callbacks it covers (the PUBACKs); the writes stay pending, and
seen by reads through the overlay, until `checkpoint` applies every logged
batch to LMDB in one transaction: a row put and deleted again before that (a
message queued for an offline session that came back meanwhile) never touches
LMDB, only the last write of each key is applied. The checkpoint's
transaction also records the last log record it holds (see log.py), then the
log starts over from its top.

A checkpoint is made when the log has been idle for a tick (IDLE_SECONDS
without a record: the owner's timer, `schedule` and `tick`), so LMDB is
written when the broker has nothing else to do, not while a burst of
publishes waits for its acknowledgements; at the latest CHECKPOINT_SECONDS
after the first record it takes, or at once when the log holds more than
CHECKPOINT_BYTES or CHECKPOINT_WRITES writes wait in memory for it; and whenever another process is about to read the rows
(`LmdbStore.flush`, `when_stored`: a hand-over, a stop). Writes to the
retained table, which every worker writes, are not logged: they are
committed to LMDB with their batch, as without the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from actormq.errors import StorageError
from actormq.storage.log import LOGGED_TABLES, WriteLog
from actormq.storage.writer import Committer, Op

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.05
CHECKPOINT_SECONDS = 2.0
CHECKPOINT_BYTES = 16 << 20
CHECKPOINT_WRITES = 100_000


def last_writes(ops: list[Op]) -> list[Op]:
    """The logged ops a checkpoint applies: the last one of each key, in order
    (the others are overwritten or deleted by it)."""
    rows = [op for op in ops if op[1] in LOGGED_TABLES]
    if not any(op[3] is None for op in rows):
        return rows         # puts only: a repeated key is simply put twice, in order
    last = {(op[1], op[2]): op for op in rows}
    if len(last) == len(rows):
        return rows
    return [op for op in rows if last[(op[1], op[2])] is op]


class LoggedCommitter(Committer):
    """Commits a store's batches to its write-ahead log and checkpoints them into
    LMDB; used by one thread at a time, as Committer."""

    def __init__(self, env, pending, write_log: WriteLog) -> None:
        super().__init__(env, pending)
        self.log = write_log
        self.schedule: Callable[[], None] | None = None     # asks for a checkpoint in a while
        self._scheduled = False
        self._writes = 0        # logged since the last checkpoint
        self._seen = 0          # the last record at the previous tick
        self._since = 0.0       # when the oldest record not in LMDB was written

    def commit(self, ops: list[Op], inline_loop=None) -> None:
        unlogged: list[Op] = []
        try:
            self.log.append(ops, unlogged)
            rejected = self._commit_fitting(unlogged) if unlogged else set()
        except (OSError, StorageError) as error:
            error = error if isinstance(error, StorageError) else StorageError(f"the write-ahead log failed: {error}")
            log.error("storage writer stopped committing: %s", error)
            self._pending.settle(ops, set(), error, inline_loop)
            self._pending.fail(error)
            return
        failed = None
        if rejected:
            log.error("the store is full: %d retained messages were not saved", len(rejected))
            failed = StorageError(f"{len(rejected)} writes did not fit in the store and were not saved")
        self._pending.logged(ops, inline_loop, failed)
        if self.log.number == self.log.applied + 1:
            self._since = time.monotonic()
        self._writes += len(ops)
        if self.log.offset >= CHECKPOINT_BYTES or self._writes >= CHECKPOINT_WRITES:
            self.checkpoint(inline_loop)
        elif not self._scheduled and self.schedule is not None:
            self._scheduled = True
            self._seen = self.log.number
            self.schedule()

    def tick(self, inline_loop=None) -> None:
        """The timer: checkpoint if no record came since the last tick or the
        oldest has waited CHECKPOINT_SECONDS; else look again in a tick."""
        self._scheduled = False
        if not self.log.unapplied:
            return
        if self.log.number == self._seen or time.monotonic() - self._since >= CHECKPOINT_SECONDS:
            self.checkpoint(inline_loop)
        elif self.schedule is not None:
            self._scheduled = True
            self._seen = self.log.number
            self.schedule()

    def checkpoint(self, inline_loop=None) -> None:
        """Apply every logged batch to LMDB in one transaction and start the log over."""
        batches, ops = self._pending.taken()
        if not batches:
            return
        self._writes = 0
        rows = last_writes(ops)
        if self.log.unapplied:
            rows.append(self.log.mark_op())
        try:
            rejected = self._commit_fitting(rows) if rows else set()
        except StorageError as error:
            log.error("storage checkpoint failed: %s", error)
            self._pending.settle(ops, set(), error, inline_loop, batches)
            self._pending.fail(error)
            return
        if rejected:    # the log keeps them until the next start replays them (or fails again)
            log.error("the store is full: %d logged writes could not be applied to it", len(rejected))
        else:
            self.log.restart()
        self._pending.settle(ops, rejected, None, inline_loop, batches)
