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

With sync on the loop appends each turn's batch itself (`append_turn`: a
write to the OS, no flush) and the writer thread flushes the log (`flush`):
a flush covers every record written before it began, so it runs the
durability callbacks of those only, and the records appended while it runs
wait for the next one (one flush in the writer while the loop writes the
next turn's record). The writer still commits a batch itself, with its flush,
when it writes to the retained table (its LMDB commit flushes, which the loop
must not wait for) or while a checkpoint holds the log (`commit_next`).
With sync on the writer also preallocates the log (`write_ahead`, a step at
a time between its flushes): from the start up to the size it can reach
(CHECKPOINT_BYTES and AHEAD more, what the loop appends while a checkpoint
runs), later AHEAD past its records whenever they come within AHEAD / 2 of
the end of the zeros, so that the loop never waits for zeros.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from actormq.errors import StorageError
from actormq.storage.log import LOGGED_TABLES, WriteLog
from actormq.storage.lmdb_env import OP_KEY, OP_TABLE, OP_VALUE
from actormq.storage.writer import Committer, Op

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.05
CHECKPOINT_SECONDS = 2.0
CHECKPOINT_BYTES = 16 << 20
CHECKPOINT_WRITES = 100_000
AHEAD = 4 << 20     # with sync: the log's zeros are kept this far past its records


def last_writes(ops: list[Op]) -> list[Op]:
    """The logged ops a checkpoint applies: the last one of each key, in order
    (the others are overwritten or deleted by it). The common cases are
    tested at C level: only logged tables, no delete or no key written twice."""
    if set(map(OP_TABLE, ops)) <= LOGGED_TABLES:
        rows = list(ops)
    else:
        rows = [op for op in ops if op[1] in LOGGED_TABLES]
    if None not in map(OP_VALUE, rows) or len(set(map(OP_KEY, rows))) == len(rows):
        return rows         # puts only (a repeated key is simply put twice, in order), or no key written twice
    last = {(op[1], op[2]): op for op in rows}
    if len(last) == len(rows):
        return rows
    return [op for op in rows if last[(op[1], op[2])] is op]


class LoggedCommitter(Committer):
    """Commits a store's batches to its write-ahead log and checkpoints them into
    LMDB. With sync on, the loop appends its turns' batches itself
    (`append_turn`) while the writer thread flushes (`flush`) and checkpoints;
    a lock keeps the log's appends in the order of their batches and holds
    them off while a checkpoint starts the log over."""

    def __init__(self, env, pending, write_log: WriteLog) -> None:
        super().__init__(env, pending)
        self.log = write_log
        self.schedule: Callable[[], None] | None = None     # asks for a checkpoint in a while
        self.checkpoint_soon: Callable[[], None] | None = None  # asks the writer for one (append_turn)
        self.flush_soon: Callable[[], None] | None = None       # asks the writer for a `flush` (append_turn)
        self.write_ahead_soon: Callable[[], None] | None = None     # asks the writer for `write_ahead`
        self._lock = threading.Lock()       # the log's appends (and its start over)
        self._scheduled = False
        self._writes = 0        # logged since the last checkpoint
        self._seen = 0          # the last record at the previous tick
        self._since = 0.0       # when the oldest record not in LMDB was written
        self._appended = 0      # the last op appended to the log
        self._flushed = 0       # the last op whose callbacks ran (flushed, with sync)
        self._flush_asked = False
        self._checkpoint_asked = False
        self._zeros_asked = False   # a `write_ahead` is under way (or failed: none is asked again)

    def commit(self, ops: list[Op], inline_loop=None) -> None:
        with self._lock:
            unlogged = self._write(ops, inline_loop)
        if unlogged is not None:
            self._settle_written(ops, unlogged, inline_loop)

    def commit_next(self, commit_interval: float) -> bool:
        with self._lock:    # taken and appended with no append_turn in between: the log keeps their order
            ops, more = self._pending.take(commit_interval)
            unlogged = self._write(ops, None) if ops else None
        if unlogged is not None:
            self._settle_written(ops, unlogged, None)
        return more

    def append_turn(self) -> bool:
        """With sync on, in the loop's thread: append the pending batches to the log
        without a flush, the writer asked for one (`flush_soon`) before the first
        is written, so that it wakes meanwhile (its flush waits for the lock);
        whether the writer must commit the batches left: it holds the log, or a
        batch writes to a table that is not logged."""
        if not self._lock.acquire(blocking=False):
            return True
        try:
            more = True
            while more:
                ops, more = self._pending.take_within(LOGGED_TABLES)
                if not ops:
                    break
                if not self._flush_asked:
                    self._flush_asked = True
                    self.flush_soon()
                if self._write(ops, None) is None:
                    break
            checkpoint = self._large() and not self._checkpoint_asked
            if checkpoint:
                self._checkpoint_asked = True
            tick = not checkpoint and self._tick_wanted()
        finally:
            self._lock.release()
        if checkpoint:
            self.checkpoint_soon()
        elif tick:
            self.schedule()
        return ops is None

    def flush(self, inline_loop=None, failed: StorageError | None = None) -> None:
        """Flush (with sync) what is appended, then run the durability callbacks it
        covers (with `failed`: its retained rows did not all fit); with sync on,
        in the writer's thread."""
        with self._lock:    # after the append under way, if any
            self._flush_asked = False
            last = self._appended
        if last <= self._flushed:
            return
        if self.log.sync:
            try:
                self.log.flush()
            except OSError as error:
                failed = StorageError(f"the write-ahead log failed: {error}")
                log.error("storage writer stopped committing: %s", failed)
                self._pending.fail_waiting(failed)
                return
        self._flushed = last
        self._pending.logged(last, inline_loop, failed)
        if self.log.offset + AHEAD // 2 > self.log.ahead and self.log.sync:
            self.keep_ahead()

    def keep_ahead(self) -> None:
        """Have the writer write the log's zeros ahead (with sync), unless it is already."""
        if not self._zeros_asked and self.write_ahead_soon is not None:
            self._zeros_asked = True
            self.write_ahead_soon()

    def write_ahead(self) -> bool:
        """In the writer's thread: one step of the log's zeros (see WriteLog.write_ahead);
        whether more are due."""
        try:
            more = self.log.write_ahead(max(CHECKPOINT_BYTES, self.log.offset) + AHEAD)
        except OSError as error:   # a full disk: the records' own writes say so, if it comes to that
            log.warning("stopped preallocating the write-ahead log %s: %s", self.log.path, error)
            return False
        self._zeros_asked = more
        return more

    def _write(self, ops: list[Op], inline_loop) -> list[Op] | None:
        """Append `ops` to the log, without a flush; the lock is held. Their
        retained rows (not logged), or None when the log failed (so did the store)."""
        unlogged: list[Op] = []
        try:
            self.log.append(ops, unlogged, self._pending.encoded(ops))
        except OSError as error:
            self._failed(ops, StorageError(f"the write-ahead log failed: {error}"), inline_loop)
            return None
        self._appended = ops[-1][0]
        if self.log.number == self.log.applied + 1:
            self._since = time.monotonic()
        self._writes += len(ops)
        return unlogged

    def _settle_written(self, ops: list[Op], unlogged: list[Op], inline_loop) -> None:
        """Commit the retained rows of written `ops` to LMDB, flush the log and run
        their callbacks, then checkpoint if the log is large."""
        failed = None
        if unlogged:
            try:
                rejected = self._commit_fitting(unlogged)
            except StorageError as error:
                self._failed(ops, error, inline_loop)
                return
            if rejected:
                log.error("the store is full: %d retained messages were not saved", len(rejected))
                failed = StorageError(f"{len(rejected)} writes did not fit in the store and were not saved")
        self.flush(inline_loop, failed)
        if self._large():
            self.checkpoint(inline_loop)
        elif not self._scheduled:   # mostly it is, while records come
            with self._lock:
                tick = self._tick_wanted()
            if tick:
                self.schedule()

    def _failed(self, ops: list[Op], error: StorageError, inline_loop) -> None:
        log.error("storage writer stopped committing: %s", error)
        self._pending.settle(ops, set(), error, inline_loop)
        self._pending.fail(error)

    def _large(self) -> bool:
        return self.log.offset >= CHECKPOINT_BYTES or self._writes >= CHECKPOINT_WRITES

    def _tick_wanted(self) -> bool:
        """Whether to start the idle timer (`schedule`, once the lock is released: it
        may start a thread), which runs while the log holds records (see tick)."""
        if self._scheduled or self.schedule is None:
            return False
        self._scheduled = True
        self._seen = self.log.number
        return True

    def tick(self, inline_loop=None) -> None:
        """The timer: checkpoint if no record came since the last tick or the
        oldest has waited CHECKPOINT_SECONDS; else look again in a tick."""
        with self._lock:
            self._scheduled = False
            if not self.log.unapplied:
                return
            due = self.log.number == self._seen or time.monotonic() - self._since >= CHECKPOINT_SECONDS
            tick = not due and self._tick_wanted()
        if due:
            self.checkpoint(inline_loop)
        elif tick:
            self.schedule()

    def checkpoint(self, inline_loop=None) -> None:
        """Apply every logged batch to LMDB in one transaction and start the log over.
        The loop goes on appending while LMDB commits them; what it appended
        meanwhile is applied in a second transaction, with the log held, before
        the log starts over."""
        with self._lock:
            taken = self._taken()
        if taken is None or not self._apply(taken, inline_loop):
            return
        with self._lock:
            caught_up = self._taken()
            if caught_up is None or self._apply(caught_up, inline_loop):
                self.log.restart()

    def _taken(self) -> tuple[int, list[Op], list[Op]] | None:
        """The batches taken so far (all appended), their ops, and the rows a
        checkpoint of them applies; None when there are none. The lock is held."""
        self._checkpoint_asked = False
        batches, ops = self._pending.taken()
        if not batches:
            return None
        self._writes = 0
        rows = last_writes(ops)
        if self.log.unapplied:
            rows.append(self.log.mark_op())
        return batches, ops, rows

    def _apply(self, taken: tuple[int, list[Op], list[Op]], inline_loop) -> bool:
        """Commit a checkpoint's rows to LMDB and settle its batches; whether all fit."""
        batches, ops, rows = taken
        try:
            rejected = self._commit_fitting(rows) if rows else set()
        except StorageError as error:
            log.error("storage checkpoint failed: %s", error)
            self._pending.settle(ops, set(), error, inline_loop, batches)
            self._pending.fail(error)
            return False
        if rejected:    # the log keeps them until the next start replays them (or fails again)
            log.error("the store is full: %d logged writes could not be applied to it", len(rejected))
        self._pending.settle(ops, rejected, None, inline_loop, batches)
        return not rejected
