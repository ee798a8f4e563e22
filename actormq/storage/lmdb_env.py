"""One LMDB environment of a data dir (`<data_dir>/actormq.lmdb`): opening and
checking it (format version in the meta table), its named databases, reads and
group commits that survive map resizes, and the map's growth up to its maximum.

Several worker processes open the same environment; when one grows the map the
others see lmdb.MapResizedError and adopt the new size (set_mapsize(0)). LMDB
allows set_mapsize only while this process has no transaction open, so every
transaction holds a shared lock and a resize takes it exclusively.

With `sync` (the default) every commit is flushed to the disk (fsync) before it
returns: it survives a power cut. Without it a commit reaches the operating
system only (LMDB's MDB_NOSYNC): it survives a killed process, not a power cut
or a crash of the OS; closing the environment flushes it.

With `sync` the data file is also kept *preallocated*: zeros are written (and
flushed once) ahead of the last page in use, so that a commit overwrites
blocks the file already has. LMDB appends its new pages at the end of the
file; an fdatasync after an append must also commit the file's new size and
blocks to the filesystem's journal, which every other writer of the disk
shares: on a busy disk such a commit took 0.7 to 7 ms, one into written
zeros 0.5 to 0.8 ms. The zeros are written under LMDB's write lock (inside a
write transaction), so no process's commit writes there meanwhile; LMDB
reads only the pages its meta page names, so the longer file changes
nothing else (the file is that much larger on disk).
The map is never writable (MDB_WRITEMAP): it would halve the CPU of a small
commit, but a full disk would then kill the worker (SIGBUS on a page of the
sparse file) instead of failing the commit with an error.

This module is the boundary where lmdb.Error becomes StorageError.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import groupby, islice, repeat
from operator import itemgetter

import lmdb

from actormq.errors import StorageError, StorageFullError
from actormq.storage.base import META, TABLES, scan_floor

ENV_DIR = "actormq.lmdb"
FORMAT_KEY = b"format_version"
FORMAT_VERSION = b"1"
MAX_READERS = 512
FIRST_SLICE = 32  # rows a range reads first; then four times as many each time
FULL_COUNT_SECONDS = 0.1  # the pages of tables this process did not write are counted this often
MIN_AHEAD = 64 << 10     # with sync: zeros kept ahead of the pages in use, at least ...
MAX_AHEAD = 32 << 20     # ... and at most (half the bytes in use between the two)
log = logging.getLogger(__name__)
_DB_NAMES = frozenset(name.encode() for name in TABLES)

Op = tuple[int, str, bytes, "bytes | None"]  # (seq, table, key, value or None for delete)
OP_TABLE, OP_KEY, OP_VALUE = itemgetter(1), itemgetter(2), itemgetter(3)     # the parts of an Op


class SharedExclusiveLock:
    """Many holders of the shared side, or one of the exclusive side; not reentrant."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    def acquire_shared(self) -> None:
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1

    def release_shared(self) -> None:
        with self._cond:
            self._shared -= 1
            if not self._shared:
                self._cond.notify_all()

    def acquire_exclusive(self) -> None:
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True

    def release_exclusive(self) -> None:
        with self._cond:
            self._exclusive = False
            self._cond.notify_all()


def env_path(data_dir: str) -> str:
    return os.path.join(data_dir, ENV_DIR)


def _open_error(path: str, error: BaseException) -> StorageError:
    if isinstance(error, (lmdb.InvalidError, lmdb.VersionMismatchError, lmdb.IncompatibleError)):
        return StorageError(f"{path} is not an actormq LMDB data directory ({error}).")
    return StorageError(f"cannot create or open the data directory {path} ({error}).")


class LmdbEnv:
    """The environment, its named databases and a size-aware way to use them."""

    def __init__(self, data_dir: str, map_size: int = 64 << 20, max_map_size: int = 16 << 30,
                 readonly: bool = False, sync: bool = True) -> None:
        self.path = env_path(data_dir)
        self.max_map_size = max(int(max_map_size), 1 << 16)
        self.sync = sync
        self.live_bytes = 0
        self._pages: dict[str, int] = {}    # table -> its pages at the last count
        self._counted_at = 0.0              # monotonic time of the last count of every table
        self.commits = 0                # write transactions committed (for the metrics)
        self.writes = 0                 # puts and deletes in them
        self.commit_seconds = 0.0       # time spent committing
        self._lock = SharedExclusiveLock()
        if readonly and not os.path.isfile(os.path.join(self.path, "data.mdb")):
            raise StorageError(f"no actormq data in {data_dir}")
        try:
            if not readonly:
                os.makedirs(self.path, exist_ok=True)
            self._env = lmdb.open(self.path, map_size=min(int(map_size), self.max_map_size),
                                  max_dbs=len(TABLES) + 1, max_readers=MAX_READERS, subdir=True,
                                  readonly=readonly, create=not readonly, sync=sync)
        except (lmdb.Error, OSError) as error:
            raise _open_error(self.path, error) from None
        try:
            self._dbs = self._retrying(self._open_dbs_readonly if readonly else self._open_dbs)
        except BaseException:
            self._env.close()
            raise
        self.page_size = self._env.stat()["psize"]
        self._data_fd: int | None = None    # with sync: where the zeros ahead are written
        self._file_end = 0                  # the data file's size as this process last saw it
        if not readonly:
            self.live_bytes = self.read(self._live_bytes)
            if sync:
                self._open_data_file()

    # --- opening --------------------------------------------------------------

    def _check_format(self, txn, names: set, meta) -> bool:
        """True when the data is ours; False when the environment is still empty."""
        version = txn.get(FORMAT_KEY, db=meta) if meta is not None else None
        if version is None:
            if names - _DB_NAMES:
                raise StorageError(f"{self.path} is an LMDB environment but not actormq data.")
            return False
        if version != FORMAT_VERSION:
            raise StorageError(f"{self.path} holds storage format version {version.decode(errors='replace')}; "
                               f"this actormq reads format version {FORMAT_VERSION.decode()}.")
        return True

    def _open_dbs(self) -> dict:
        with self._env.begin(write=True) as txn:
            names = {bytes(key) for key in txn.cursor().iternext(values=False)}
            meta = self._env.open_db(META.encode(), txn=txn) if META.encode() in names else None
            if not self._check_format(txn, names, meta):
                meta = self._env.open_db(META.encode(), txn=txn)
                txn.put(FORMAT_KEY, FORMAT_VERSION, db=meta)
            return {name: self._env.open_db(name.encode(), txn=txn) for name in TABLES}

    def _open_dbs_readonly(self) -> dict:
        with self._env.begin() as txn:
            names = {bytes(key) for key in txn.cursor().iternext(values=False)}
        # a handle opened inside a read transaction dies with it: open them outside
        dbs = {name: self._env.open_db(name.encode(), create=False) for name in TABLES if name.encode() in names}
        with self._env.begin() as txn:
            if not self._check_format(txn, names, dbs.get(META)):
                raise StorageError(f"no actormq data in {os.path.dirname(self.path)}")
        return dbs

    # --- transactions -----------------------------------------------------------

    def _retrying(self, action):
        """Run `action` under the shared lock, adopting a map size changed elsewhere."""
        while True:
            self._lock.acquire_shared()
            try:
                return action()
            except lmdb.MapResizedError:
                pass
            except lmdb.MapFullError:
                raise
            except lmdb.Error as error:
                raise StorageError(f"LMDB error in {self.path}: {error}") from None
            finally:
                self._lock.release_shared()
            self._resize(0)

    def _resize(self, size: int) -> None:
        self._lock.acquire_exclusive()
        try:
            self._env.set_mapsize(size)
        except lmdb.Error as error:
            raise StorageError(f"cannot resize the LMDB map of {self.path}: {error}") from None
        finally:
            self._lock.release_exclusive()

    @property
    def map_size(self) -> int:
        return self._env.info()["map_size"]

    def read(self, fn):
        """fn(txn) in a read transaction; fn must not keep anything from txn."""
        def action():
            with self._env.begin() as txn:
                return fn(txn)
        return self._retrying(action)

    def commit(self, ops: Sequence[Op]) -> None:
        """Apply `ops` in one write transaction, growing the map as needed.

        Raises StorageFullError when they do not fit at max_map_size.
        """
        started = time.perf_counter()
        while True:
            try:
                self.live_bytes = self._retrying(lambda: self._apply(ops))
                self.commits += 1
                self.writes += len(ops)
                self.commit_seconds += time.perf_counter() - started
                return
            except lmdb.MapFullError:
                self._grow()

    def _apply(self, ops: Sequence[Op]) -> int:
        """Ops go in runs of one table, found at C level: a run of puts in one
        putmulti, a run of deletes in one pass at C level (a drained queue's
        rows), a run of both in stretches of each (see _apply_mixed). A
        checkpoint is a run of a queue's rows and the log's mark."""
        dbs = self._dbs
        written = set()
        with self._env.begin(write=True) as txn:
            if self._data_fd is not None:
                self._keep_ahead()
            for table, run in groupby(ops, OP_TABLE):
                run = list(run)
                values = list(map(OP_VALUE, run))
                deletes = values.count(None)
                if not deletes:
                    txn.cursor(db=dbs[table]).putmulti(zip(map(OP_KEY, run), values))
                elif deletes == len(run):
                    _delete_all(txn, dbs[table], list(map(OP_KEY, run)))
                else:
                    _apply_mixed(txn, dbs[table], run)
                written.add(table)
            return self._live_bytes(txn, written)

    def _live_bytes(self, txn, written=None) -> int:
        """The pages in use, in bytes: those of the tables just `written` (all of
        them when None) counted in `txn`, the others as last counted; every table
        is counted again at least every FULL_COUNT_SECONDS, for what other worker
        processes wrote (a commit of a few rows costs a third less than counting
        every table each time)."""
        now = time.monotonic()
        if written is None or now - self._counted_at >= FULL_COUNT_SECONDS:
            written = self._dbs
            self._counted_at = now
        pages = self._pages
        for table in written:
            stat = txn.stat(self._dbs[table])
            pages[table] = stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
        return sum(pages.values()) * self.page_size

    # --- preallocation (sync on) --------------------------------------------------

    def _open_data_file(self) -> None:
        try:
            self._data_fd = os.open(os.path.join(self.path, "data.mdb"), os.O_WRONLY | os.O_CLOEXEC)
            self._file_end = os.fstat(self._data_fd).st_size
        except OSError as error:
            log.warning("cannot preallocate %s, commits will append to it (%s)", self.path, error)
            self._data_fd = None

    def _keep_ahead(self) -> None:
        """Write zeros ahead of the last page in use when fewer than half the
        wanted bytes are left; inside a write transaction (LMDB's write lock)."""
        used = (self._env.info()["last_pgno"] + 1) * self.page_size
        ahead = min(max(used // 2, MIN_AHEAD), MAX_AHEAD)
        if self._file_end - used >= ahead // 2:
            return
        fd = self._data_fd
        try:
            end = self._file_end = max(self._file_end, os.fstat(fd).st_size)  # others grow it too
            target = min(used + ahead, self._env.info()["map_size"])
            if end - used >= ahead // 2 or target <= end:
                return
            zeros = bytes(min(target - end, 1 << 20))
            while end < target:
                end += os.pwrite(fd, zeros[:target - end], end)
            os.fdatasync(fd)
            self._file_end = end
        except OSError as error:  # a full disk: LMDB's own commit says so, if it comes to that
            log.warning("stopped preallocating %s: %s", self.path, error)
            os.close(fd)
            self._data_fd = None

    def _grow(self) -> None:
        """Double this process's map size (LMDB persists the larger size at the next commit)."""
        current = self.map_size
        if current >= self.max_map_size:
            raise StorageFullError(f"the store in {self.path} is full: its map reached "
                                   f"max_map_size ({self.max_map_size} bytes).")
        self._resize(min(current * 2, self.max_map_size))

    # --- reads --------------------------------------------------------------------

    def get(self, table: str, key: bytes) -> bytes | None:
        db = self._dbs.get(table)
        return None if db is None else self.read(lambda txn: txn.get(key, db=db))

    def range(self, table: str, prefix: bytes, after: bytes | None, limit: int,
              values: bool = True, start: bytes | None = None) -> tuple[list, bool]:
        """Up to `limit` rows under `prefix` with key > `after` (>= `start` when there is
        no `after`); and whether more may follow."""
        db = self._dbs.get(table)
        if db is None:
            return [], False
        floor = after if after is not None else scan_floor(prefix, start)

        if values:
            def outside(row) -> bool:
                return not row[0].startswith(prefix)
        else:
            def outside(key) -> bool:
                return not key.startswith(prefix)

        def collect(txn):
            rows: list = []
            cursor = txn.cursor(db=db)
            if not cursor.set_range(floor):
                return rows, False
            if after is not None and cursor.key() == after and not cursor.next():
                return rows, False
            rows_of = cursor.iternext(keys=True, values=values)
            size = FIRST_SLICE
            while len(rows) < limit:
                # in slices read at C speed, growing; the rows past the prefix are cut off
                taken = list(islice(rows_of, min(size, limit - len(rows))))
                if not taken:
                    return rows, False
                if outside(taken[-1]):
                    rows += taken[:bisect_left(taken, True, key=outside)]
                    return rows, False
                rows += taken
                size *= 4
            return rows, True
        return self.read(collect)

    def iter_range(self, table: str, prefix: bytes = b"", values: bool = True,
                   chunk: int = 1000) -> Iterator:
        """Rows (or keys) under `prefix`, read in chunks of fresh read transactions."""
        after = None
        while True:
            rows, more = self.range(table, prefix, after, chunk, values)
            yield from rows
            if not more:
                return
            after = rows[-1][0] if values else rows[-1]

    def count(self, table: str, prefix: bytes, probe: Sequence[bytes] = ()) -> tuple[int, set]:
        """Rows under `prefix`, and which of the `probe` keys exist (one snapshot)."""
        db = self._dbs.get(table)
        if db is None:
            return 0, set()

        def counting(txn):
            present = {key for key in probe if txn.get(key, db=db) is not None}
            if not prefix:
                return txn.stat(db)["entries"], present
            cursor = txn.cursor(db=db)
            total = 0
            if cursor.set_range(prefix):
                for key in cursor.iternext(keys=True, values=False):
                    if not key.startswith(prefix):
                        break
                    total += 1
            return total, present
        return self.read(counting)

    def entries(self, table: str) -> int:
        return self.count(table, b"")[0]

    def close(self) -> None:
        self._lock.acquire_exclusive()
        try:
            if not self.sync:
                self._env.sync(True)  # what the OS holds reaches the disk at a clean stop
            self._env.close()
            if self._data_fd is not None:
                os.close(self._data_fd)
                self._data_fd = None
        finally:
            self._lock.release_exclusive()


def _apply_mixed(txn, db, run: list) -> None:
    """A run of puts and deletes of one table, in order: each stretch of puts in
    one putmulti, each stretch of deletes in one pass."""
    for deleting, stretch in groupby(run, _is_delete):
        if deleting:
            _delete_all(txn, db, list(map(OP_KEY, stretch)))
        else:
            txn.cursor(db=db).putmulti([(key, value) for _, _, key, value in stretch])


def _is_delete(op: Op) -> bool:
    return op[3] is None


def _delete_all(txn, db, keys: list) -> None:
    """Delete `keys` from `db` in `txn`, one pass at C level."""
    deque(map(txn.delete, keys, repeat(b""), repeat(db)), 0)
