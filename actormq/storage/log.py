"""The write-ahead log of one worker process (`storage.log = on`).

A worker appends the queue and session writes of each loop turn to its own
log file with one write (a record), and acknowledges them once the record
has reached the OS (`storage.sync = off`) or the disk (`on`: fdatasync of a
preallocated file, so the flush writes data only; the writer thread flushes
what the loop appended, see checkpoint.py). LMDB becomes a checkpoint
of the log (see checkpoint.py): the rows are applied to it in large batches,
off the acknowledgement's path, and the log starts over once they are.

A record: crc32 (4 bytes), record number (8), body length (4), then the body:
per op a tag (`q`/`s`: queue/session table, upper case for a delete), the key
length (2), for a put the value length (4), the key and the value. The crc
covers the number, the length and the body. Reading stops at the first record
that is torn, fails its crc, or does not carry the number after the previous
one: after a restart from the top of the file the records of the round
before are left behind the new ones, with older numbers.

Files live in `<data_dir>/actormq.wal/`, one per process (`<pid>.log`), held
under an exclusive flock for the process's life. A log whose lock can be
taken belongs to a dead process: whoever opens the store (the node at start,
a restarted worker, a survivor taking over a dead worker's sessions) replays
it into LMDB (`recover`) and removes it. The number of the last record
applied to LMDB is kept in LMDB's meta table, in the checkpoint's own
transaction, so a replay skips what is there already.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from zlib import crc32

from actormq.storage.base import META, QUEUE, SESSION

log = logging.getLogger(__name__)

LOG_DIR = "actormq.wal"
SUFFIX = ".log"
PREALLOCATE = 1 << 20       # with sync: the zeros the writer writes and flushes in one step ahead of the records
LOGGED_TABLES = frozenset({QUEUE, SESSION})
MARK_PREFIX = b"log-applied:"

_HEADER = struct.Struct("<IQI")
_NUMBERED = struct.Struct("<QI")
_CRC = struct.Struct("<I")
_PUT = struct.Struct("<cHI")
_DELETE = struct.Struct("<cH")
_PUT_TAG = {QUEUE: b"q", SESSION: b"s"}
_DELETE_TAG = {QUEUE: b"Q", SESSION: b"S"}
_TABLE_OF = {b"q"[0]: QUEUE, b"s"[0]: SESSION, b"Q"[0]: QUEUE, b"S"[0]: SESSION}
_DELETES = frozenset(b"QS")

Op = tuple  # (seq, table, key, value or None)


def encode_body(ops: Sequence[Op], unlogged: list | None = None,
                encoded: Sequence[tuple[int, int, bytes]] = ()) -> bytes:
    """The ops of one record: those of the queue and session tables; the others
    (retained messages, shared by every worker) are added to `unlogged`.
    `encoded`: (first seq, last seq, body part) of runs of the ops, in order, whose
    body part their issuer made already (`put_head`, key, value of each: see
    records.queue_ops); the ops between them are encoded here."""
    if not encoded:
        return _encode_ops(ops, unlogged)
    first = ops[0][0]
    if len(encoded) == 1 and encoded[0][0] == first and encoded[0][1] == ops[-1][0]:
        return encoded[0][2]       # a turn's rows of queues alone: the common case
    parts = []
    at = 0
    for start, end, part in encoded:
        if start - first > at:
            parts.append(_encode_ops(ops[at:start - first], unlogged))
        parts.append(part)
        at = end - first + 1
    if at < len(ops):
        parts.append(_encode_ops(ops[at:], unlogged))
    return b"".join(parts)


def _encode_ops(ops: Sequence[Op], unlogged: list | None) -> bytes:
    """encode_body of ops none of which is encoded yet. A put's head is looked up
    again only when its table or the sizes of its key and value change from the
    put before (a turn's queue rows mostly share them)."""
    parts: list = []
    append = parts.append
    delete = _DELETE.pack
    put_tags, delete_tags = _PUT_TAG, _DELETE_TAG
    head = b""
    head_table = None
    key_size = value_size = -1
    for op in ops:
        _, table, key, value = op
        if table not in put_tags:
            unlogged.append(op)
        elif value is None:
            append(delete(delete_tags[table], len(key)))
            append(key)
        else:
            if len(value) != value_size or len(key) != key_size or table is not head_table:
                head_table, key_size, value_size = table, len(key), len(value)
                head = put_head(table, key_size, value_size)
            append(head)
            append(key)
            append(value)
    return b"".join(parts)


@functools.lru_cache(maxsize=256)
def put_head(table: str, key_size: int, value_size: int) -> bytes:
    """What a record's body holds before the key and the value of a put to `table`
    (a logged table) of these sizes."""
    return _PUT.pack(_PUT_TAG[table], key_size, value_size)


def record_header(number: int, body: bytes) -> bytes:
    numbered = _NUMBERED.pack(number, len(body))
    return _CRC.pack(crc32(body, crc32(numbered))) + numbered


def encode_record(number: int, body: bytes) -> bytes:
    return record_header(number, body) + body


def decode_body(body) -> list[tuple[str, bytes, bytes | None]]:
    """(table, key, value or None) of each op of a record's body."""
    view = memoryview(body)
    ops = []
    at = 0
    end = len(view)
    while at < end:
        tag = view[at]
        if tag in _DELETES:
            _, size = _DELETE.unpack_from(view, at)
            at += _DELETE.size
            ops.append((_TABLE_OF[tag], bytes(view[at:at + size]), None))
            at += size
        else:
            _, size, value_size = _PUT.unpack_from(view, at)
            at += _PUT.size
            key = bytes(view[at:at + size])
            at += size
            ops.append((_TABLE_OF[tag], key, bytes(view[at:at + value_size])))
            at += value_size
    if at != end:
        raise ValueError("a log record's ops overrun its body")
    return ops


def read_records(data) -> Iterator[tuple[int, bytes]]:
    """(number, body) of each whole record from the top, up to the first torn,
    corrupt or out-of-sequence one."""
    view = memoryview(data)
    at = 0
    expected = None
    while at + _HEADER.size <= len(view):
        crc, number, size = _HEADER.unpack_from(view, at)
        start = at + _HEADER.size
        if size == 0 and number == 0 or start + size > len(view):
            return
        body = view[start:start + size]
        if crc32(body, crc32(view[at + 4:start])) != crc or (expected is not None and number != expected):
            return
        yield number, bytes(body)
        expected = number + 1
        at = start + size


def log_dir(data_dir: str) -> str:
    return os.path.join(data_dir, LOG_DIR)


def mark_key(path: str) -> bytes:
    return MARK_PREFIX + os.path.basename(path).encode()


class WriteLog:
    """This process's log file: append a turn's ops, start over after a checkpoint."""

    def __init__(self, data_dir: str, sync: bool) -> None:
        directory = log_dir(data_dir)
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"{os.getpid()}{SUFFIX}")
        building = f"{self.path}.new"
        fd = os.open(building, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)      # before it has the name a recovery looks for
        self._fd = fd
        self.ahead = 0          # with sync: zeros written and flushed (or records flushed) up to here
        self._zeroed = 0        # zeros or records written up to here: the writer's zeros go past it
        self._zeroing = threading.Lock()    # held while `_zeroed` moves and the zeros are written
        os.rename(building, self.path)
        if sync:
            _sync_dir(directory)
        self.sync = sync
        self.mark = mark_key(self.path)
        self.number = 0         # of the last record written
        self.offset = 0         # where the next record goes
        self.applied = 0        # the last record number LMDB holds

    def append(self, ops: Sequence[Op], unlogged: list,
               encoded: Sequence[tuple[int, int, bytes]] = ()) -> None:
        """One record of `ops`, written (to the OS: with sync, `flush` makes it
        durable) before this returns; the ops of tables that are not logged go
        to `unlogged`; `encoded`: the runs of them encoded already (encode_body)."""
        body = encode_body(ops, unlogged, encoded)
        if not body:
            return
        self.number += 1
        size = _HEADER.size + len(body)
        if self.offset + size > self.ahead and self.sync:
            self._claim(self.offset + size)
        written = os.pwritev(self._fd, (record_header(self.number, body), body), self.offset)
        if written != size:
            raise OSError(f"short write to {self.path}")
        self.offset += written

    def flush(self) -> None:
        """Flush every record written so far to the disk (with sync)."""
        os.fdatasync(self._fd)

    def _claim(self, end: int) -> None:
        """The writer's zeros are behind the record about to be written up to `end`:
        they go past it from now on (the zeros being written meanwhile are
        waited for). The record's flush then writes the file's new size too."""
        with self._zeroing:
            if end > self._zeroed:
                self._zeroed = end

    def write_ahead(self, until: int) -> bool:
        """In the writer's thread: zeros past the records, one step of PREALLOCATE
        towards `until`, then a flush of them, so that the flush of a record
        written over them writes data only, not the file's new size and blocks
        (the filesystem's journal); whether `until` is not reached yet."""
        with self._zeroing:
            start = self._zeroed
            if start >= until:
                return False
            self._zeroed = start + os.pwrite(self._fd, bytes(min(PREALLOCATE, until - start)), start)
            end = self._zeroed
        os.fdatasync(self._fd)
        self.ahead = max(self.ahead, end)
        return end < until

    @property
    def unapplied(self) -> bool:
        return self.number > self.applied

    def mark_op(self) -> Op:
        """The op that records, in the checkpoint's transaction, what LMDB holds now."""
        return (0, META, self.mark, struct.pack("<Q", self.number))

    def restart(self) -> None:
        """Everything logged is in LMDB: the next record goes to the top of the file
        (the older records behind it no longer count, see read_records)."""
        self.applied = self.number
        self.offset = 0

    def close(self, remove: bool) -> None:
        if self._fd is None:
            return
        if remove:
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def _sync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replay_ops(data, applied: int) -> tuple[list[Op], int]:
    """The ops of the records after record `applied`, and the last record's number."""
    ops: list[Op] = []
    last = applied
    for number, body in read_records(data):
        if number <= applied:
            continue
        ops.extend((0, table, key, value) for table, key, value in decode_body(body))
        last = number
    return ops, last


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    import psutil       # here: a worker that never recovers a log does not load it
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _owner(name: str) -> int | None:
    stem = name[:-len(SUFFIX)]
    return int(stem) if stem.isdigit() else None


def recover(data_dir: str, env) -> int:
    """Replay into `env` (an LmdbEnv) the log of every process that is gone, then
    remove it; the number of ops replayed. A dead process's log that another
    process is replaying right now is waited for, so that what it holds is in
    LMDB when this returns."""
    directory = log_dir(data_dir)
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(SUFFIX))
    except FileNotFoundError:
        return 0
    replayed = 0
    for name in names:
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue        # replayed by another process meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _owner(name)
                if owner is None or _alive(owner):
                    continue    # its process is alive
                fcntl.flock(fd, fcntl.LOCK_EX)      # another process replays it: wait for that
            if os.fstat(fd).st_nlink == 0:
                continue    # replayed by another process meanwhile
            replayed += _replay(path, fd, env)
        finally:
            os.close(fd)
    return replayed


def _replay(path: str, fd: int, env) -> int:
    with open(fd, "rb", closefd=False) as file:
        data = file.read()
    mark = mark_key(path)
    found = env.get(META, mark)
    applied = struct.unpack("<Q", found)[0] if found is not None else 0
    ops, last = replay_ops(data, applied)
    if ops:
        log.info("replaying %d writes logged by a process that is gone (%s)", len(ops), path)
    count = len(ops)
    ops.append((0, META, mark, struct.pack("<Q", last)))
    env.commit(ops)
    os.unlink(path)     # then the mark: a replay stopped in between finds it
    env.commit([(0, META, mark, None)])
    return count
