"""The Store protocol every backend implements, the table names and the storage modes.

A store is a set of named tables of bytes keys to bytes values, sorted by key.
Keys are 1..MAX_KEY_SIZE bytes (the LMDB limit, enforced by every backend so
that the three modes behave alike). Keys of the "queue" table are
`client_id + b"\\x00" + seq`; the part up to and including the first NUL is a
key's *group* (a client's queue), which RamStore and CachedStore use to keep
per-client scans cheap.

Modes are built by composition (see stores.py): ram = RamStore,
disc = CachedStore(LmdbStore), disc_only = LmdbStore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from actormq.errors import StorageError

RETAINED = "retained"
QUEUE = "queue"
SESSION = "session"
META = "meta"
TABLES = (RETAINED, QUEUE, SESSION, META)

RAM = "ram"
DISC = "disc"
DISC_ONLY = "disc_only"
MODES = (RAM, DISC, DISC_ONLY)

MAX_KEY_SIZE = 511
GROUP_END = b"\x00"

Rows = Iterator[tuple[bytes, bytes]]


@runtime_checkable
class Store(Protocol):
    def get(self, table: str, key: bytes) -> bytes | None: ...

    def put(self, table: str, key: bytes, value: bytes) -> None:
        """Insert or replace; may raise StorageFullError."""

    def defer(self, owner) -> int:
        """Let `owner` keep the queue rows it writes and hand them over in one go
        (`owner.take_rows(table, first_seq, entries)`) before anything else touches the store; the bytes
        of rows it may keep, 0 when it must put them (see LmdbStore.defer)."""

    def delete(self, table: str, key: bytes) -> None: ...

    def delete_many(self, table: str, keys: list[bytes]) -> None:
        """Delete these rows, in order (one call for a batch of deletes)."""

    def scan(self, table: str, prefix: bytes = b"", start: bytes | None = None) -> Rows:
        """Rows whose key starts with `prefix` (and is >= `start` when given), sorted by key."""

    def count(self, table: str, prefix: bytes = b"") -> int: ...

    def delete_prefix(self, table: str, prefix: bytes) -> int:
        """Delete every row under `prefix`; returns how many there were."""

    def when_durable(self, callback: Callable[[], None],
                     on_error: Callable[[StorageError], None] | None = None, loop=None) -> None:
        """Run `callback` once every earlier write is committed: now when nothing
        is pending, else in the writer's thread, or given the caller's event
        loop, in that loop (the callbacks one commit settles share one call).

        If some of those writes could not be saved (store full, disk error),
        `on_error(error)` runs instead; without on_error the failure is logged.
        """

    def invalidate(self, table: str, prefix: bytes = b"") -> None:
        """Forget cached rows under `prefix` so the next read reloads them."""

    def flush(self) -> None:
        """Block until every pending write is committed."""

    def close(self) -> None: ...


def check_table(table: str) -> None:
    if table not in TABLES:
        raise StorageError(f"unknown table {table!r}; tables are {', '.join(TABLES)}")


def check_key(table: str, key: bytes) -> None:
    """Raise StorageError for an unknown table or a key LMDB cannot hold."""
    check_table(table)
    if not 0 < len(key) <= MAX_KEY_SIZE:
        raise StorageError(f"{table} key of {len(key)} bytes; keys must be 1..{MAX_KEY_SIZE} bytes")


def check_keys(table: str, keys: list[bytes]) -> None:
    """check_key for a batch, with one pass over the key lengths."""
    check_table(table)
    if keys and not (0 < min(map(len, keys)) and max(map(len, keys)) <= MAX_KEY_SIZE):
        bad = next(key for key in keys if not 0 < len(key) <= MAX_KEY_SIZE)
        check_key(table, bad)


def group_of(key: bytes) -> bytes:
    """The key's group: up to and including the first NUL, or the whole key."""
    end = key.find(GROUP_END)
    return key if end < 0 else key[: end + 1]


def prefix_group(prefix: bytes) -> bytes | None:
    """The one group every key under `prefix` belongs to, None when it spans groups."""
    end = prefix.find(GROUP_END)
    return None if end < 0 else prefix[: end + 1]


def scan_floor(prefix: bytes, start: bytes | None) -> bytes:
    """The smallest key a scan of `prefix` from `start` may yield."""
    return prefix if start is None or start < prefix else start


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key under `prefix` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
