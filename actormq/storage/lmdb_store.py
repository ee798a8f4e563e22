"""LmdbStore: the disc_only mode, and the durable half of the disc mode.

Reads go to LMDB (memory use does not depend on how much is stored); writes go
to the pending batch and a StorageWriter actor group-commits them. Reads check
the pending overlay first, so a caller sees its own writes before they are
committed. `when_durable` callbacks run in the writer's thread after the
commit that covers them.

Deferred rows: the owner of a queue's rows (the Queue) may keep the rows it
writes during a turn of the event loop that commits (`commit_on`) and hand
them over in one go (`defer`): one append per row instead of a put each, one
call per queue and turn. They are handed over before anything else touches
the store (every read and write, `when_durable`, a commit, `flush`), so reads
see them and a later delete of the same key comes after them. Their room
(`defer`'s budget) is reserved against the quota as if it were pending.

Nothing here blocks the issuing thread (an event loop) except `flush` and
`close`: a writer that falls behind is *backlogged* and says so (`on_backlog`,
`when_room`, see writer.py) for its owner to hold producers back.

With the write-ahead log (`log`, once a loop owns the store: `commit_on`)
the queue and session writes are durable, and acknowledged, once logged; LMDB
is their checkpoint (checkpoint.py). `when_stored` and `flush` wait until
they are in LMDB, for whoever reads them from another process next (a
hand-over, a stop). Opening the store replays the log of every process that
is gone (log.py); so does `recover_logs`, before a dead worker's sessions are
taken over.

Running out of space: the map grows by doubling up to max_map_size. Rows of
the bulk tables (queue, retained) may fill it only up to a quota that keeps a
reserve free: LMDB needs free pages to delete rows (copy-on-write), and the
small session records must still fit, so a full store can always be drained
and clients can still connect. put() raises StorageFullError for a row that
might not fit: what is committed plus twice what is pending and the row (a
page is seldom full) above the limit. The estimate is pessimistic until the
writer commits what is pending; should a row pass it and still not fit, the
writer rejects it at commit and those waiting on it are told (when_durable's
on_error). A refusing store logs it once, then at most every
REFUSAL_LOG_SECONDS (refusals.py), and once more when the rows in use are a safety margin
below the limit again.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterator
from functools import partial
from operator import itemgetter

import pykka

from actormq.errors import StorageError, StorageFullError
from actormq.storage.base import (MAX_KEY_SIZE, QUEUE, RETAINED, TABLES, Rows, check_key, check_keys,
                                  check_table, scan_floor)
from actormq.storage.checkpoint import IDLE_SECONDS, LoggedCommitter
from actormq.storage.lmdb_env import LmdbEnv
from actormq.storage.refusals import Refusals
from actormq.storage.log import WriteLog, recover
from actormq.storage.loop_commits import LoopCommits
from actormq.storage.writer import (ROW_OVERHEAD, CheckpointDue, CommitDue, Committer, ErrorCallback, FlushDue,
                                   PendingWrites, StorageWriter, WriteAheadDue)

log = logging.getLogger(__name__)

SCAN_CHUNK = 1000
PENDING_BATCHES = 50  # the writer is backlogged beyond this many uncommitted batches
FLUSH_POLL = 1.0
QUOTA_TABLES = frozenset({QUEUE, RETAINED})
RESERVE_SHARE = 8            # the reserve is 1/8 of max_map_size ...
MAX_RESERVE = 64 << 20       # ... but no more than this
WRITER_SWITCH_INTERVAL = 0.0002  # s; see commit_on
DEFER_BUDGET = 1 << 20       # at most this many bytes of rows deferred per owner and turn
_COMMIT_DUE = CommitDue()
_FLUSH_DUE = FlushDue()
_WRITE_AHEAD_DUE = WriteAheadDue()
_CHECKPOINT_DUE = CheckpointDue()
_CHECKPOINT_TICK = CheckpointDue(now=False)
_KEY = itemgetter(0)


def _merge(committed: list, pending: list) -> Iterator[tuple[bytes, bytes]]:
    """Both sorted by key; a pending row wins over a committed one with its key."""
    i = j = 0
    while i < len(committed) or j < len(pending):
        if j == len(pending) or (i < len(committed) and committed[i][0] < pending[j][0]):
            yield committed[i]
            i += 1
            continue
        if i < len(committed) and committed[i][0] == pending[j][0]:
            i += 1
        yield pending[j]
        j += 1


class LmdbStore:
    """One LMDB environment under `<data_dir>/actormq.lmdb` with its writer actor."""

    def __init__(self, data_dir: str, map_size: int = 64 << 20, max_map_size: int = 16 << 30,
                 commit_batch: int = 1000, commit_interval_ms: int = 0, sync: bool = True,
                 log: bool = False) -> None:
        self._env = LmdbEnv(data_dir, map_size, max_map_size, sync=sync)
        self._data_dir = data_dir
        self._logging = log
        self._log: WriteLog | None = None
        self.recover_logs()
        self._pending = PendingWrites(commit_batch, max(1, commit_batch) * PENDING_BATCHES)
        self._committer = Committer(self._env, self._pending)
        self._commit_interval = commit_interval_ms / 1000
        self._writer = StorageWriter.start(self._committer, self._commit_interval)
        self._loop_commits: LoopCommits | None = None
        self._writer_loop = None
        self._writer_thread = None
        self._owner_loop = None         # the loop whose thread may defer rows (commit_on)
        self._owner_thread = None
        self._deferred: list = []       # owners of rows not handed over yet (see defer)
        self._budgeted = 0              # bytes of room given to them
        max_size = self._env.max_map_size
        self._margin = min(max_size // 4, max(1, commit_batch) * 2 * self._env.page_size)
        self.quota = max_size - min(max_size // RESERVE_SHARE, MAX_RESERVE)
        self._refusals = Refusals(self._env.path)
        self._closed = False

    @property
    def map_size(self) -> int:
        return self._env.map_size

    def commit_on(self, loop) -> None:
        """With sync off, let `loop` (whose thread calls this) commit the writes
        (see loop_commits.py); with sync on the writer thread keeps doing it,
        and takes the GIL back from the busy loop soon after each fsync.

        With sync on, a batch that `loop` starts goes to the writer at the end
        of the loop's turn, not at its first write: the writer, woken at the
        first write of a read of a hundred publishes, would fight the loop for
        the GIL to commit a few of them and make the rest wait a whole fsync
        more; at the end of the turn it commits them all in one. With the log,
        the loop appends the turn's record itself (a write to the OS, as with
        sync off) and the writer only flushes the log (see _commit_turn)."""
        self._owner_loop = loop
        self._owner_thread = threading.get_ident()
        if self._logging and self._log is None:
            self._start_log()
        if not self._env.sync:
            if self._loop_commits is None:
                self._loop_commits = LoopCommits(self._committer, self._pending, loop, self._commit_interval,
                                                 self._issue_deferred)
            return
        self._writer_loop = loop
        self._writer_thread = threading.get_ident()
        if sys.getswitchinterval() > WRITER_SWITCH_INTERVAL:
            # a thread back from a blocking call waits for the GIL up to the
            # switch interval (5 ms by default) while the loop runs Python: the
            # time of every commit, and of the PUBACKs behind it, would be that
            sys.setswitchinterval(WRITER_SWITCH_INTERVAL)

    def _start_log(self) -> None:
        """From now on the queue and session writes go to this process's log first."""
        self.flush()
        self._log = WriteLog(self._data_dir, self._env.sync)
        self._committer = LoggedCommitter(self._env, self._pending, self._log)
        if self._env.sync:
            self._writer.stop()
            self._writer = StorageWriter.start(self._committer, self._commit_interval)
            self._committer.schedule = self._checkpoint_later
            self._committer.checkpoint_soon = self._tell_checkpoint
            self._committer.flush_soon = partial(self._writer.tell, _FLUSH_DUE)
            self._committer.write_ahead_soon = partial(self._writer.tell, _WRITE_AHEAD_DUE)
            self._committer.keep_ahead()    # in the background: the first burst finds the log preallocated

    def _checkpoint_later(self) -> None:
        """With sync on: the writer thread's checkpoint timer ticks in IDLE_SECONDS, a
        timer of the owner's loop (a thread per tick would start twenty a second
        while records come)."""
        loop = self._owner_loop
        if threading.get_ident() == self._owner_thread:
            loop.call_later(IDLE_SECONDS, self._tick_checkpoint)
            return
        with contextlib.suppress(RuntimeError):     # its loop is closed: so is the store, checkpointed
            loop.call_soon_threadsafe(loop.call_later, IDLE_SECONDS, self._tick_checkpoint)

    def _tell_checkpoint(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self._writer.tell(_CHECKPOINT_DUE)

    def _tick_checkpoint(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self._writer.tell(_CHECKPOINT_TICK)

    def recover_logs(self) -> int:
        """Replay into LMDB the log of every process that is gone (a dead worker's,
        before its sessions are taken over); the number of writes replayed."""
        return recover(self._data_dir, self._env)

    # --- the writer's backlog ------------------------------------------------------

    @property
    def backlogged(self) -> bool:
        """The writer is `max_pending` ops behind (until it catches up to half)."""
        return self._pending.backlogged

    @property
    def pending_writes(self) -> PendingWrites:
        """The writes issued and not yet in LMDB (its `backlogged` is the store's)."""
        return self._pending

    def on_backlog(self, callback: Callable[[], None] | None) -> None:
        """Run `callback` in the issuing thread after each write issued while backlogged."""
        self._pending.on_backlog = callback

    def when_room(self, callback: Callable[[], None]) -> None:
        """Run `callback` (maybe in the writer's thread) once the writer is not backlogged."""
        self._pending.when_room(callback)

    def usage(self) -> dict:
        """Counters for the metrics: commits, writes, commit seconds, map and live sizes."""
        env = self._env
        return {"commits": env.commits, "writes": env.writes, "commit_seconds": env.commit_seconds,
                "map_size": env.map_size, "live_bytes": env.live_bytes}

    # --- reads ------------------------------------------------------------------

    def get(self, table: str, key: bytes) -> bytes | None:
        check_table(table)
        if self._deferred:
            self._issue_all()
        found, value = self._pending.lookup(table, key)
        return value if found else self._env.get(table, key)

    def scan(self, table: str, prefix: bytes = b"", start: bytes | None = None) -> Rows:
        check_table(table)
        if self._deferred:
            self._issue_all()
        return self._scan(table, prefix, start)

    def _scan(self, table: str, prefix: bytes, start: bytes | None) -> Rows:
        """Pages of SCAN_CHUNK committed rows, each read in one transaction and
        merged with the pending writes in its range (see overlay.py)."""
        after = None
        floor = scan_floor(prefix, start)
        while True:
            # before LMDB: a commit in between loses nothing
            puts, deletes = self._pending.page(table, prefix, floor)
            committed, more = self._env.range(table, prefix, after, SCAN_CHUNK, start=start)
            last = committed[-1][0] if more else None
            if deletes:
                committed = [row for row in committed if row[0] not in deletes]
            if puts:
                if after is not None:
                    puts = puts[bisect_right(puts, after, key=_KEY):]
                if last is not None:
                    puts = puts[:bisect_right(puts, last, key=_KEY)]
                yield from _merge(committed, puts)
            else:
                yield from committed
            if not more:
                return
            after = last

    def count(self, table: str, prefix: bytes = b"") -> int:
        check_table(table)
        if self._deferred:
            self._issue_all()
        pending = self._pending.rows(table, prefix)
        total, present = self._env.count(table, prefix, [key for key, _ in pending])
        for key, value in pending:
            if value is None and key in present:
                total -= 1
            elif value is not None and key not in present:
                total += 1
        return total

    # --- writes -------------------------------------------------------------------

    def put(self, table: str, key: bytes, value: bytes) -> None:
        if table not in TABLES or not 0 < len(key) <= MAX_KEY_SIZE:
            check_key(table, key)
        if type(value) is not bytes:
            value = bytes(value)
        size = len(key) + len(value) + ROW_OVERHEAD
        pending = self._pending
        expected = self._env.live_bytes + 2 * (pending.pending_bytes + size)
        bulk = table in QUOTA_TABLES
        limit = self.quota if bulk else self._env.max_map_size
        if expected > limit:
            self._refuse(limit)
        if self._closed:
            self._check_open()
        if self._deferred:
            self._issue_all()
        if pending.add(table, key, value, size):
            self._batch_started()
        if self._refusals.count and bulk and expected + self._margin <= limit:
            self._refusals.accepted()

    def delete(self, table: str, key: bytes) -> None:
        check_key(table, key)
        self._issue(table, key, None)

    def delete_many(self, table: str, keys: list[bytes]) -> None:
        check_keys(table, keys)
        self._check_open()
        if self._deferred:
            self._issue_all()
        if keys and self._pending.delete_many(table, keys):
            self._batch_started()

    def delete_prefix(self, table: str, prefix: bytes) -> int:
        keys = [key for key, _ in self.scan(table, prefix)]
        self.delete_many(table, keys)
        return len(keys)

    def _issue(self, table: str, key: bytes, value: bytes | None) -> None:
        if self._closed:
            self._check_open()
        if self._deferred:
            self._issue_all()
        if self._pending.add(table, key, value):
            self._batch_started()

    # --- deferred rows ------------------------------------------------------------

    def defer(self, owner) -> int:
        """Let `owner` keep the queue rows it writes from now on and hand them over
        (`owner.take_rows(table, first_seq, entries)`: the puts of its rows,
        numbered as pending writes from first_seq on, with their log entries
        added to `entries`, and the room it did not use) before anything else
        touches the store, at the latest when the loop's turn ends. Returns the
        bytes of rows it may keep (counted as ROW_OVERHEAD plus key and value,
        at their most), reserved against the quota and counted as pending until
        committed; 0 when it must put them one by one: outside the loop's
        thread, or while the store is near full. Whatever was deferred before
        is handed over first."""
        if self._deferred:
            self._issue_all()
        if threading.get_ident() != self._owner_thread or self._refusals.count or self._closed:
            return 0
        room = (self.quota - self._env.live_bytes) // 2 - self._pending.pending_bytes - self._budgeted
        budget = min(room // 2, DEFER_BUDGET)
        if budget <= 0:
            return 0
        self._budgeted += budget
        self._deferred.append((owner, budget))
        if len(self._deferred) == 1:
            if self._loop_commits is not None:
                self._loop_commits.batch_started()     # its commit hands them over first
            else:
                self._owner_loop.call_soon(self._hand_over)
        return budget

    def _issue_deferred(self) -> bool:
        """Hand the deferred rows over to the pending writes, all in one go;
        whether they start a batch (the caller commits it: see _issue_all)."""
        return self._pending.add_numbered(self._take_deferred)

    def _take_deferred(self, first_seq: int) -> tuple[list, int, bytes]:
        """The puts of every deferred owner's rows, numbered from `first_seq`
        (PendingWrites.add_numbered), the bytes they add, and with the log, its
        body of them (see log.encode_body)."""
        owners, self._deferred = self._deferred, []
        self._budgeted = 0
        ops: list = []
        size = 0
        entries: list = []
        for owner, budget in owners:
            taken, left = owner.take_rows(QUEUE, first_seq + len(ops), entries)
            if ops:
                ops += taken
            else:
                ops = taken
            size += budget - left
        return ops, size, b"".join(entries) if self._log is not None else b""

    def _hand_over(self) -> None:
        """With sync on, at the end of the loop's turn: the deferred rows go to the writer."""
        if self._deferred and self._issue_deferred():
            self._commit_turn()

    def _commit_turn(self) -> None:
        """With sync on, at the end of the loop's turn: the writer commits the turn's
        writes; with the log, the loop appends them to it (no flush: a write to
        the OS) and the writer flushes the log, their durability callbacks once
        it has. The writer commits them itself while it holds the log and when
        they write retained messages (LoggedCommitter.append_turn)."""
        if self._log is None:
            self._writer.tell(_COMMIT_DUE)
            return
        if self._committer.append_turn():
            self._writer.tell(_COMMIT_DUE)

    def _batch_started(self) -> None:
        if self._loop_commits is not None:
            self._loop_commits.batch_started()
        elif (self._writer_loop is not None and threading.get_ident() == self._writer_thread
              and self._writer_loop.is_running()):
            self._writer_loop.call_soon(self._commit_turn)
        else:
            self._writer.tell(_COMMIT_DUE)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"the store in {self._env.path} is closed")

    def _refuse(self, limit: int) -> None:
        self._refusals.refused(limit)
        raise StorageFullError(f"the store in {self._env.path} is full ({limit} bytes of max_map_size "
                               f"{self._env.max_map_size}); the row was not saved")

    # --- durability ------------------------------------------------------------------

    def when_durable(self, callback: Callable[[], None], on_error: ErrorCallback | None = None,
                     loop=None) -> None:
        self._when(self._pending.when_durable, callback, on_error, loop)

    def _when(self, register, callback: Callable[[], None], on_error: ErrorCallback | None,
              loop) -> bool:
        """Hand the deferred rows over, then queue `callback` with `register` (a wait of
        PendingWrites), or run it now when there is nothing to wait for; whether it waits."""
        if self._deferred:
            self._issue_all()
        if register(callback, on_error, loop):
            return True
        if loop is None:
            callback()
        else:  # behind the callbacks of the last commit, posted to the loop but not yet run
            loop.call_soon(callback)
        return False

    def when_stored(self, callback: Callable[[], None], on_error: ErrorCallback | None = None,
                    loop=None) -> None:
        """As when_durable, but once the writes are in LMDB itself, not only in the
        log: another process reads them next. Asks for a checkpoint now."""
        if not self._when(self._pending.when_stored, callback, on_error, loop) or self._log is None:
            return
        if self._loop_commits is not None:
            self._loop_commits.store_soon()
        else:
            self._pending.urge()
            with contextlib.suppress(pykka.ActorDeadError):
                self._writer.tell(_COMMIT_DUE)
                self._writer.tell(_CHECKPOINT_DUE)

    def flush(self) -> None:
        """Commit everything pending into LMDB now and wait for it; raises if some of it failed."""
        self._issue_all()
        done = threading.Event()
        errors: list[StorageError] = []

        def failed(error: StorageError) -> None:
            errors.append(error)
            done.set()
        if not self._pending.when_stored(done.set, failed):
            return
        if self._loop_commits is not None:
            self._loop_commits.commit_all()
            if self._log is not None:   # the writer thread must not commit around the log
                self._loop_commits.checkpoint()
                return self._wait_flushed(done, errors)
        self._pending.urge()
        with contextlib.suppress(pykka.ActorDeadError):   # a stopped writer: the wait says so
            self._writer.tell(_COMMIT_DUE)  # a batch the loop would hand over at the end of its turn
            if self._log is not None:
                self._writer.tell(_CHECKPOINT_DUE)
        self._wait_flushed(done, errors)

    def _wait_flushed(self, done: threading.Event, errors: list) -> None:
        while not done.wait(FLUSH_POLL):
            if not self._writer.is_alive():
                raise StorageError(f"the storage writer of {self._env.path} is not running")
        if errors:
            raise errors[0]

    def _issue_all(self) -> None:
        """Hand the deferred rows over and see that they are committed; from another
        thread, in the loop's (which owns them) while it runs."""
        if not self._deferred:
            return
        loop = self._owner_loop
        if threading.get_ident() == self._owner_thread or not loop.is_running():
            if self._issue_deferred():
                self._batch_started()
            return
        issued = threading.Event()

        def issue() -> None:
            try:
                self._issue_all()
            finally:
                issued.set()
        loop.call_soon_threadsafe(issue)
        while not issued.wait(FLUSH_POLL):
            if not loop.is_running():
                if self._issue_deferred():
                    self._batch_started()
                return

    def invalidate(self, table: str, prefix: bytes = b"") -> None:
        """Nothing is cached here: a no-op."""

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        except StorageError as error:
            log.error("closing %s with unsaved writes: %s", self._env.path, error)
        self._closed = True
        if self._loop_commits is not None:
            self._loop_commits.close()
        self._writer.stop()
        if self._log is not None:
            self._close_log()
        self._env.close()

    def _close_log(self) -> None:
        """Everything logged is in LMDB (flush): the log and its mark go."""
        try:
            done = not self._pending.failure
            self._log.close(remove=done)
            if done:    # after the log: a stop cut short in between leaves the mark, not the log
                self._env.commit([self._log.mark_op()[:3] + (None,)])
        except (OSError, StorageError) as error:
            log.error("closing the write-ahead log %s: %s", self._log.path, error)
