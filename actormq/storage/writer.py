"""Group commit: the pending batch of writes and the writer actor that commits it.

`PendingWrites` holds every put/delete issued but not yet committed, in order,
plus an overlay (table -> key -> latest pending value) so that reads see their
own writes before the commit. The overlay is built on the first read that
needs it and kept up to date only until everything pending is committed: a
stream of writes that nobody reads back (a queue of an offline session) costs
one list append each. The issuing thread adds to it; the writer takes a batch
from it and settles the batch once LMDB has committed it.

`StorageWriter` is a pykka ThreadingActor taking CommitDue, sent when a batch
starts (with the write-ahead log also FlushDue, WriteAheadDue and
CheckpointDue, see checkpoint.py). Group commit as databases do it: an idle writer commits
at once; the writes issued while a commit runs form the next batch, so a burst
of writes costs one commit (and one fsync), not one per write. A batch holds
at most `commit_batch` ops. `commit_interval` (0 by default) makes the writer
wait that long after a batch's first op for more to join it (PostgreSQL's
commit_delay), unless the batch fills or a flush urges it.

Issuing never blocks: a writer that falls `max_pending` ops behind is
*backlogged*; it tells (`on_backlog`, run in the issuing thread for each op
issued while backlogged) and runs the `when_room` callbacks (in its own
thread) once it has caught up to half of that, so the owner can hold its
producers back meanwhile instead of growing memory without end.
When ops do not fit in the map at its maximum size, the writer commits what
fits and rejects the rest (StorageFullError for those who wait on them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

import pykka

from actormq.errors import StorageError, StorageFullError
from actormq.storage.lmdb_env import LmdbEnv, Op
from actormq.storage.overlay import PendingOverlay

log = logging.getLogger(__name__)

ROW_OVERHEAD = 16  # bytes LMDB adds to a row, roughly

ErrorCallback = Callable[[StorageError], None]


@dataclass(frozen=True, slots=True)
class CommitDue:
    """A batch has started: commit it when it is full or its interval has passed."""


@dataclass(frozen=True, slots=True)
class FlushDue:
    """With the write-ahead log and sync on: the loop appended records; flush them."""


@dataclass(frozen=True, slots=True)
class WriteAheadDue:
    """With the write-ahead log and sync on: preallocate a step of the log ahead
    of its records (see checkpoint.py)."""


@dataclass(frozen=True, slots=True)
class CheckpointDue:
    """With the write-ahead log: apply what it holds to LMDB now, or (`now`
    False: the timer) if the log has been idle (see checkpoint.py)."""

    now: bool = True


class PendingWrites:
    """Issued, not yet committed writes; shared by the issuing thread and the writer."""

    def __init__(self, commit_batch: int = 1000, max_pending: int = 50_000) -> None:
        self.commit_batch = max(1, commit_batch)
        self._max_pending = max(self.commit_batch, max_pending)
        self._lock = threading.Lock()          # the hot paths take the lock alone
        self._cond = threading.Condition(self._lock)
        self._ops: list[Op] = []
        self._taken: list[list[Op]] = []       # batches being committed, oldest first
        self._encoded: deque[tuple[int, int, bytes]] = deque()   # runs of ops whose log body is made
        self._overlay: PendingOverlay | None = None     # None while no read needs it
        self._issued = 0
        self._settled = 0                      # committed to LMDB (or rejected)
        self._durable = 0                      # in LMDB or in the write-ahead log
        self._stored: deque[tuple[int, Callable[[], None], ErrorCallback | None, object]] = deque()
        self._callbacks: deque[tuple[int, Callable[[], None], ErrorCallback | None, object]] = deque()
        self._first_at = 0.0
        self._urgent = False
        self._room_callbacks: list[Callable[[], None]] = []
        self.backlogged = False
        self._backlog_watchers: list[Callable[[bool], None]] = []
        self.on_backlog: Callable[[], None] | None = None
        self.pending_bytes = 0
        self.failure: StorageError | None = None

    # --- issuing thread -------------------------------------------------------

    def add(self, table: str, key: bytes, value: bytes | None, size: int = 0) -> bool:
        """Append one op (`size`: the bytes a put adds, see ROW_OVERHEAD); returns
        whether it starts a new batch."""
        with self._lock:
            if self.failure is not None:
                self._check_failure()
            ops = self._ops
            starts = not ops
            seq = self._issued = self._issued + 1
            ops.append((seq, table, key, value))
            if self._overlay is not None:
                self._overlay.note(seq, table, key, value)
            if value is not None:
                self.pending_bytes += size or len(key) + len(value) + ROW_OVERHEAD
            if starts or len(ops) >= self.commit_batch or seq - self._durable >= self._max_pending:
                self._grown(starts)
        if self.backlogged and self.on_backlog is not None:
            self.on_backlog()
        return starts

    def add_numbered(self, make: Callable[[int], tuple[list[Op], int, bytes]]) -> bool:
        """Append the ops `make(seq)` returns (puts to one table), numbered from
        the next seq on, in order, under one lock (with the bytes they add, see
        ROW_OVERHEAD, and the write-ahead log's body of them, or b"": see
        `encoded`): the issuer builds the entries themselves, with no list
        between; returns whether they start a new batch."""
        with self._lock:
            if self.failure is not None:
                self._check_failure()
            made, size, body = make(self._issued + 1)
            if not made:
                return False
            starts = not self._ops
            if starts:
                self._ops = made
            else:
                self._ops += made
            if body:
                self._encoded.append((made[0][0], made[-1][0], body))
            self._issued = made[-1][0]
            if self._overlay is not None:
                self._overlay.note_puts(made[0][1], made)
            self.pending_bytes += size
            self._grown(starts)
        if self.backlogged and self.on_backlog is not None:
            self.on_backlog()
        return starts

    def delete_many(self, table: str, keys: list[bytes]) -> bool:
        """Append a delete of each key, in order, under one lock; returns
        whether they start a new batch."""
        with self._lock:
            self._check_failure()
            starts = not self._ops
            ops = self._ops
            seq = self._issued
            ops.extend((seq + n, table, key, None) for n, key in enumerate(keys, 1))
            self._issued = seq + len(keys)
            if self._overlay is not None:
                self._overlay.note_deletes(seq + 1, table, keys)
            self._grown(starts)
        if self.backlogged and self.on_backlog is not None:
            self.on_backlog()
        return starts

    def _check_failure(self) -> None:
        if self.failure is not None:
            raise StorageError(f"storage writes failed earlier: {self.failure}")

    def _grown(self, started: bool) -> None:
        if started:
            self._first_at = time.monotonic()
        if len(self._ops) >= self.commit_batch:
            self._cond.notify_all()
        if self._issued - self._durable >= self._max_pending and not self.backlogged:
            self._set_backlogged(True)

    def _overlay_now(self) -> PendingOverlay:
        """The overlay, built from the unsettled ops if nobody has read since the
        last time everything was settled; the lock is held."""
        overlay = self._overlay
        if overlay is None:
            overlay = self._overlay = PendingOverlay()
            for batch in (*self._taken, self._ops):
                for op in batch:
                    overlay.note(*op)
        return overlay

    def lookup(self, table: str, key: bytes) -> tuple[bool, bytes | None]:
        """(True, value or None if deleted) when `key` has a pending write."""
        with self._lock:
            if self._settled >= self._issued:
                return False, None
            return self._overlay_now().lookup(table, key)

    def rows(self, table: str, prefix: bytes) -> list[tuple[bytes, bytes | None]]:
        """Pending rows under `prefix`, sorted; a None value is a pending delete."""
        with self._lock:
            if self._settled >= self._issued:
                return []
            return self._overlay_now().rows(table, prefix)

    def page(self, table: str, prefix: bytes, floor: bytes) -> tuple[list[tuple[bytes, bytes]], dict]:
        """What a page of a scan from `floor` needs of the pending writes: the
        puts under `prefix` from `floor` on, sorted, and the deletes (see overlay.py)."""
        with self._lock:
            if self._settled >= self._issued:
                return [], {}
            return self._overlay_now().page(table, prefix, floor)

    def when_durable(self, callback: Callable[[], None], on_error: ErrorCallback | None,
                     loop=None) -> bool:
        """Queue `callback` behind every op issued so far, to run in the writer's
        thread or, given an event loop, in the loop's; False when nothing is pending."""
        with self._lock:
            if self._durable >= self._issued:
                return False
            self._callbacks.append((self._issued, callback, on_error, loop))
            return True

    def when_stored(self, callback: Callable[[], None], on_error: ErrorCallback | None = None,
                    loop=None) -> bool:
        """Queue `callback` behind every op issued so far until it is in LMDB itself
        (not only logged: another process reads it next); False when it is already."""
        with self._lock:
            if self._settled >= self._issued:
                return False
            self._stored.append((self._issued, callback, on_error, loop))
            return True

    @property
    def unstored(self) -> bool:
        """Some ops are durable (logged) but not in LMDB yet."""
        return self._settled < self._durable

    def when_room(self, callback: Callable[[], None]) -> None:
        """Run `callback` (in the writer's thread) once the writer is no longer
        backlogged; at once when it is not."""
        with self._cond:
            if self.backlogged:
                self._room_callbacks.append(callback)
                return
        callback()

    def watch_backlog(self, callback: Callable[[bool], None]) -> None:
        """Call `callback(backlogged)` whenever `backlogged` changes (in the thread
        that changes it, with the lock held: it must only note the value)."""
        self._backlog_watchers.append(callback)

    def _set_backlogged(self, backlogged: bool) -> None:
        self.backlogged = backlogged
        for callback in self._backlog_watchers:
            callback(backlogged)

    def urge(self) -> None:
        with self._cond:
            self._urgent = True
            self._cond.notify_all()

    # --- writer thread -----------------------------------------------------------

    def take(self, commit_interval: float) -> tuple[list[Op], bool]:
        """The next batch, once due (at once with no interval): at most
        `commit_batch` ops, and whether more are left for the batch after it."""
        with self._lock:        # the Condition's own lock: its Python-level enter and exit only to wait
            if commit_interval > 0:
                while self._ops and not self._urgent and len(self._ops) < self.commit_batch:
                    remaining = self._first_at + commit_interval - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            return self._take_batch()

    def take_within(self, tables: frozenset) -> tuple[list[Op] | None, bool]:
        """As take(0), but nothing (None) when the next batch writes to a table
        outside `tables`."""
        with self._lock:
            ops = self._ops
            for op in ops[:self.commit_batch] if len(ops) > self.commit_batch else ops:
                if op[1] not in tables:
                    return None, True
            return self._take_batch()

    def _take_batch(self) -> tuple[list[Op], bool]:
        """The next batch of at most `commit_batch` ops, and whether more are left;
        the lock is held."""
        ops = self._ops
        if len(ops) > self.commit_batch:
            ops, self._ops = ops[:self.commit_batch], ops[self.commit_batch:]
            self._first_at = time.monotonic()
        else:
            self._ops = []
            self._urgent = False
        if ops:
            self._taken.append(ops)
        return ops, bool(self._ops)

    def logged(self, last_seq: int, inline_loop=None, error: StorageError | None = None) -> None:
        """The ops up to `last_seq` (taken batches) are in the write-ahead log: run
        the durability callbacks they cover; they stay pending (and seen by
        reads) until a checkpoint puts them into LMDB (`taken` and `settle`)."""
        with self._lock:
            if last_seq > self._durable:
                self._durable = last_seq
            due, room = self._now_durable()
        _run_due(due, error, inline_loop)
        for callback in room:
            _run_callback(callback, None, None)

    def _now_durable(self) -> tuple[list, list[Callable[[], None]]]:
        """The durability callbacks now due, and the room callbacks if the backlog
        is over; the lock is held."""
        due = []
        while self._callbacks and self._callbacks[0][0] <= self._durable:
            due.append(self._callbacks.popleft())
        room: list[Callable[[], None]] = []
        if self.backlogged and self._issued - self._durable <= self._max_pending // 2:
            self._set_backlogged(False)
            room, self._room_callbacks = self._room_callbacks, []
        return due, room

    def encoded(self, ops: list[Op]) -> list[tuple[int, int, bytes]]:
        """(first seq, last seq, log body) of the runs of `ops` (the next batch to
        be logged, taken in order) whose body their issuer made (add_numbered),
        in order; forgotten here, with those of runs the batch cuts (its ops
        are encoded by the log)."""
        if not self._encoded:
            return []
        last = ops[-1][0]
        found = []
        with self._lock:
            runs = self._encoded
            while runs and runs[0][0] <= last:
                run = runs.popleft()
                if run[1] <= last and run[0] >= ops[0][0]:
                    found.append(run)
        return found

    def taken(self) -> tuple[int, list[Op]]:
        """The batches taken (and logged) so far: how many, and their ops in order."""
        with self._lock:
            batches = list(self._taken)
        return len(batches), list(chain.from_iterable(batches))

    def settle(self, ops: list[Op], rejected: set[int], error: StorageError | None = None,
               inline_loop=None, batches: int = 0) -> None:
        """Forget committed (or rejected) ops and run the callbacks they cover (those
        of `inline_loop`, the loop of the calling thread, at once too); `batches`:
        the number of taken batches they are (0: the oldest, if it is `ops`)."""
        with self._lock:
            taken = self._taken
            if batches:
                del taken[:batches]
            elif taken and taken[0] is ops:
                del taken[0]
            if ops[0][0] == self._settled + 1 and ops[-1][0] == self._issued:
                # these are all the unsettled ops: forget them at once
                self._overlay = None
                self.pending_bytes = 0
            else:
                if self._overlay is not None:
                    self._overlay.forget(ops)
                self.pending_bytes -= sum([len(key) + len(value) + ROW_OVERHEAD
                                           for _, _, key, value in ops if value is not None])
            self._settled = ops[-1][0]
            self._durable = max(self._durable, self._settled)
            self._cond.notify_all()
            due, room = self._now_durable()
            while self._stored and self._stored[0][0] <= self._settled:
                due.append(self._stored.popleft())
        if rejected and error is None:
            error = StorageFullError(f"{len(rejected)} writes did not fit in the store and were not saved")
        _run_due(due, error, inline_loop)
        for callback in room:
            _run_callback(callback, None, None)

    def fail_waiting(self, error: StorageError) -> None:
        """Nothing taken will be made durable any more (its flush failed): fail
        every durability wait, then every later write (`fail`)."""
        with self._lock:
            due, self._callbacks = list(self._callbacks), deque()
        _run_due(due, error)
        self.fail(error)

    def fail(self, error: StorageError) -> None:
        """The store cannot write any more: fail every waiter and every later write."""
        with self._cond:
            self.failure = error
            ops, self._ops = self._ops, []
            self._encoded.clear()
            self._set_backlogged(False)
            room, self._room_callbacks = self._room_callbacks, []
        if ops:
            self.settle(ops, set(), error)
        for callback in room:  # nothing will be committed any more: waiting is over
            _run_callback(callback, None, None)


def _run_due(due: list, error: StorageError | None, inline_loop=None) -> None:
    """Run the callbacks of the committing thread now, and post those of each other
    event loop to it as one call (one wake-up of the loop per commit, not per callback)."""
    here: list = []
    by_loop: dict = {}
    for _, callback, on_error, loop in due:
        if loop is None or loop is inline_loop:
            here.append((callback, on_error))
        else:
            by_loop.setdefault(loop, []).append((callback, on_error))
    if here:
        _run_callbacks(here, error)
    for loop, callbacks in by_loop.items():
        loop.call_soon_threadsafe(_run_callbacks, callbacks, error)


def _run_callbacks(callbacks: list, error: StorageError | None) -> None:
    if error is not None:
        for callback, on_error in callbacks:
            _run_callback(callback, on_error, error)
        return
    start = 0
    while start < len(callbacks):   # one try for the lot: a failing callback does not stop the rest
        try:
            for start in range(start, len(callbacks)):
                callbacks[start][0]()
            return
        except Exception:
            log.exception("a storage durability callback failed")
            start += 1


def _run_callback(callback: Callable[[], None], on_error: ErrorCallback | None,
                  error: StorageError | None) -> None:
    try:
        if error is None:
            callback()
        elif on_error is not None:
            on_error(error)
        else:
            log.error("writes were not made durable, their callback is dropped: %s", error)
    except Exception:
        log.exception("a storage durability callback failed")


class Committer:
    """Commits batches taken from a PendingWrites to LMDB and settles them; used
    by one thread at a time (the writer's, or the loop's: see loop_commits.py)."""

    def __init__(self, env: LmdbEnv, pending: PendingWrites) -> None:
        self._env = env
        self._pending = pending

    def commit(self, ops: list[Op], inline_loop=None) -> None:
        """Commit `ops` and settle them; callbacks of `inline_loop` run here."""
        try:
            rejected = self._commit_fitting(ops)
            if rejected:  # the rows committed meanwhile may have freed pages (deletes)
                rejected = self._retry(ops, rejected)
        except StorageError as error:
            log.error("storage writer stopped committing: %s", error)
            self._pending.settle(ops, set(), error, inline_loop)
            self._pending.fail(error)
            return
        if rejected:
            log.error("the store is full: %d of %d writes were not saved", len(rejected), len(ops))
        self._pending.settle(ops, rejected, None, inline_loop)

    def commit_next(self, commit_interval: float) -> bool:
        """Take the next batch once due (PendingWrites.take) and commit it; whether
        more are left."""
        ops, more = self._pending.take(commit_interval)
        if ops:
            self.commit(ops)
        return more

    def _retry(self, ops: list[Op], rejected: set[int]) -> set[int]:
        """Try the rejected ops once more, unless a later op of the batch wrote the same key."""
        last = {(table, key): seq for seq, table, key, _ in ops}
        retry = [op for op in ops if op[0] in rejected and last[(op[1], op[2])] == op[0]]
        return (rejected - {op[0] for op in retry}) | self._commit_fitting(retry)

    def _commit_fitting(self, ops: list[Op]) -> set[int]:
        """Commit `ops`, or as many as fit when the map is at its maximum; the seqs left out."""
        try:
            self._env.commit(ops)
            return set()
        except StorageFullError:
            if len(ops) == 1:
                return {ops[0][0]}
        middle = len(ops) // 2
        return self._commit_fitting(ops[:middle]) | self._commit_fitting(ops[middle:])


class StorageWriter(pykka.ThreadingActor):
    """Commits the pending batch of one LmdbStore in its own thread."""

    use_daemon_thread = True

    def __init__(self, committer, commit_interval: float) -> None:
        super().__init__()
        self._committer = committer
        self._commit_interval = max(0.0, commit_interval)

    def on_receive(self, message) -> None:
        if isinstance(message, CommitDue):
            if self._committer.commit_next(self._commit_interval):
                # no later op starts a batch while these wait: remind ourselves
                self.actor_ref.tell(message)
        elif isinstance(message, FlushDue):
            self._committer.flush()
        elif isinstance(message, WriteAheadDue):
            if self._committer.write_ahead():
                self.actor_ref.tell(message)    # a step at a time: the flushes asked meanwhile come between
        elif isinstance(message, CheckpointDue):
            committer = self._committer
            if hasattr(committer, "checkpoint"):
                committer.checkpoint() if message.now else committer.tick()
