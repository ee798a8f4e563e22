"""Group commit: the pending batch of writes and the writer actor that commits it.

`PendingWrites` holds every put/delete issued but not yet committed, in order,
plus an overlay (table -> key -> latest pending value) so that reads see their
own writes before the commit. The issuing thread adds to it; the writer takes
a batch from it and settles the batch once LMDB has committed it.

`StorageWriter` is a pykka ThreadingActor taking one message, CommitDue, sent
when a batch starts. It commits once the batch holds `commit_batch` ops or
`commit_interval` seconds have passed since its first op (or at once when a
flush urges it), so a burst of writes costs one fsync, not one per write.
Issuing blocks while `max_pending` ops are uncommitted, so a writer that
falls behind slows the producers down instead of growing memory.
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

import pykka

from actormq.errors import StorageError, StorageFullError
from actormq.storage.lmdb_env import LmdbEnv, Op

log = logging.getLogger(__name__)

ROW_OVERHEAD = 16  # bytes LMDB adds to a row, roughly

ErrorCallback = Callable[[StorageError], None]


@dataclass(frozen=True, slots=True)
class CommitDue:
    """A batch has started: commit it when it is full or its interval has passed."""


class PendingWrites:
    """Issued, not yet committed writes; shared by the issuing thread and the writer."""

    def __init__(self, commit_batch: int = 1000, max_pending: int = 50_000) -> None:
        self.commit_batch = max(1, commit_batch)
        self._max_pending = max(self.commit_batch, max_pending)
        self._writer_thread: int | None = None
        self._cond = threading.Condition()
        self._ops: list[Op] = []
        self._overlay: dict[str, dict[bytes, tuple[int, bytes | None]]] = {}
        self._issued = 0
        self._settled = 0
        self._callbacks: deque[tuple[int, Callable[[], None], ErrorCallback | None]] = deque()
        self._first_at = 0.0
        self._urgent = False
        self._watched: set[int] = set()
        self._rejected: set[int] = set()
        self.pending_bytes = 0
        self.failure: StorageError | None = None

    # --- issuing thread -------------------------------------------------------

    def add(self, table: str, key: bytes, value: bytes | None, watch: bool = False) -> tuple[int, bool]:
        """Append one op; returns (its seq, whether it starts a new batch).

        Blocks while `max_pending` ops are uncommitted (backpressure), except in
        the writer's own thread (a durability callback that writes).
        """
        with self._cond:
            self._wait_for_room()
            starts = not self._ops
            self._issued += 1
            seq = self._issued
            self._ops.append((seq, table, key, value))
            self._overlay.setdefault(table, {})[key] = (seq, value)
            if value is not None:
                self.pending_bytes += len(key) + len(value) + ROW_OVERHEAD
            if watch:
                self._watched.add(seq)
            self._grown(starts)
            return seq, starts

    def delete_many(self, table: str, keys: list[bytes]) -> bool:
        """Append a delete of each key, in order, under one lock (blocking as
        `add` does); returns whether they start a new batch."""
        with self._cond:
            self._wait_for_room()
            starts = not self._ops
            ops = self._ops
            overlay = self._overlay.setdefault(table, {})
            seq = self._issued
            for key in keys:
                seq += 1
                ops.append((seq, table, key, None))
                overlay[key] = (seq, None)
            self._issued = seq
            self._grown(starts)
            return starts

    def _wait_for_room(self) -> None:
        while (self._issued - self._settled >= self._max_pending and self.failure is None
               and threading.get_ident() != self._writer_thread):
            self._urgent = True
            self._cond.notify_all()
            self._cond.wait()
        if self.failure is not None:
            raise StorageError(f"storage writes failed earlier: {self.failure}")

    def _grown(self, started: bool) -> None:
        if started:
            self._first_at = time.monotonic()
        if len(self._ops) >= self.commit_batch:
            self._cond.notify_all()

    def lookup(self, table: str, key: bytes) -> tuple[bool, bytes | None]:
        """(True, value or None if deleted) when `key` has a pending write."""
        with self._cond:
            found = self._overlay.get(table, {}).get(key)
        return (False, None) if found is None else (True, found[1])

    def rows(self, table: str, prefix: bytes) -> list[tuple[bytes, bytes | None]]:
        """Pending rows under `prefix`, sorted; a None value is a pending delete."""
        with self._cond:
            overlay = self._overlay.get(table)
            if not overlay:
                return []
            found = [(key, entry[1]) for key, entry in overlay.items() if key.startswith(prefix)]
        found.sort()
        return found

    def when_durable(self, callback: Callable[[], None], on_error: ErrorCallback | None) -> bool:
        """Queue `callback` behind every op issued so far; False when nothing is pending."""
        with self._cond:
            if self._settled >= self._issued:
                return False
            self._callbacks.append((self._issued, callback, on_error))
            return True

    def urge(self) -> None:
        with self._cond:
            self._urgent = True
            self._cond.notify_all()

    def pop_rejected(self, seq: int) -> bool:
        with self._cond:
            self._watched.discard(seq)
            if seq in self._rejected:
                self._rejected.discard(seq)
                return True
            return False

    # --- writer thread -----------------------------------------------------------

    def take(self, commit_interval: float) -> list[Op]:
        """Block until the batch is due, then hand it over (empty when there is none)."""
        with self._cond:
            self._writer_thread = threading.get_ident()
            while self._ops and not self._urgent and len(self._ops) < self.commit_batch:
                remaining = self._first_at + commit_interval - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            ops, self._ops = self._ops, []
            self._urgent = False
            return ops

    def settle(self, ops: list[Op], rejected: set[int], error: StorageError | None = None) -> None:
        """Forget committed (or rejected) ops and run the callbacks they cover."""
        with self._cond:
            for seq, table, key, value in ops:
                overlay = self._overlay[table]
                if overlay.get(key, (0,))[0] == seq:
                    del overlay[key]
                if value is not None:
                    self.pending_bytes -= len(key) + len(value) + ROW_OVERHEAD
            self._rejected.update(rejected & self._watched)
            self._settled = ops[-1][0]
            self._cond.notify_all()
            due = []
            while self._callbacks and self._callbacks[0][0] <= self._settled:
                due.append(self._callbacks.popleft())
        if rejected and error is None:
            error = StorageFullError(f"{len(rejected)} writes did not fit in the store and were not saved")
        for _, callback, on_error in due:
            _run_callback(callback, on_error, error)

    def fail(self, error: StorageError) -> None:
        """The store cannot write any more: fail every waiter and every later write."""
        with self._cond:
            self.failure = error
            ops, self._ops = self._ops, []
        if ops:
            self.settle(ops, set(), error)


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


class StorageWriter(pykka.ThreadingActor):
    """Commits the pending batch of one LmdbStore; the only LMDB writer of its process."""

    use_daemon_thread = True

    def __init__(self, env: LmdbEnv, pending: PendingWrites, commit_interval: float) -> None:
        super().__init__()
        self._env = env
        self._pending = pending
        self._commit_interval = max(0.0, commit_interval)

    def on_receive(self, message) -> None:
        if isinstance(message, CommitDue):
            ops = self._pending.take(self._commit_interval)
            if ops:
                self._commit(ops)

    def _commit(self, ops: list[Op]) -> None:
        try:
            rejected = self._commit_fitting(ops)
            if rejected:  # the rows committed meanwhile may have freed pages (deletes)
                rejected = self._retry(ops, rejected)
        except StorageError as error:
            log.error("storage writer stopped committing: %s", error)
            self._pending.settle(ops, set(), error)
            self._pending.fail(error)
            return
        if rejected:
            log.error("the store is full: %d of %d writes were not saved", len(rejected), len(ops))
        self._pending.settle(ops, rejected)

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
