"""CachedStore: the disc mode. Reads from memory, writes to memory and to the
LmdbStore underneath (whose writer makes them durable).

What is held in memory is loaded lazily on first read:
- a *grouped* table ("queue" by default) loads one key group at a time, that is
  one client's queue (base.group_of), so a worker process holds only the queues
  it reads; a read whose prefix spans groups goes to LMDB directly;
- an *uncached* table ("session" and "meta" by default: small, read at
  connect, and written by whichever worker owns the client) is always read
  from LMDB, so every worker sees the latest session record;
- any other table ("retained") loads whole on its first read.
Writes to a group or table that is not loaded go to LMDB only; they are read
back with the rest when it is loaded.

Another worker process may write the same rows (after a session takeover):
`invalidate` drops the cached rows so that the next read reloads them. Only the
owner thread may use a CachedStore.
"""

from __future__ import annotations

from actormq.storage.base import META, QUEUE, SESSION, Rows, check_table, prefix_group
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.ram import RamStore

_WHOLE = b""  # the unit of a table loaded as a whole


class CachedStore:
    """An in-memory copy of what is read, in front of an LmdbStore."""

    def __init__(self, inner: LmdbStore, grouped_tables: tuple[str, ...] = (QUEUE,),
                 uncached_tables: tuple[str, ...] = (SESSION, META)) -> None:
        self._inner = inner
        self._memory = RamStore()
        self._grouped = frozenset(grouped_tables)
        self._uncached = frozenset(uncached_tables)
        self._loaded: set[tuple[str, bytes]] = set()
        # waits on the inner store's writes (nothing cached to add): its own
        # methods, one call less per durable acknowledgement
        self.when_durable = inner.when_durable
        self.when_stored = inner.when_stored

    def _unit(self, table: str, prefix: bytes) -> bytes | None:
        """The unit of loading that holds every row under `prefix`; None when none does."""
        check_table(table)
        if table in self._uncached:
            return None
        return prefix_group(prefix) if table in self._grouped else _WHOLE

    def _cached(self, table: str, prefix: bytes) -> bool:
        """Load the unit of `prefix` if needed; False when the read must go to LMDB."""
        unit = self._unit(table, prefix)
        if unit is None:
            return False
        if (table, unit) not in self._loaded:
            if unit is _WHOLE:
                self._memory.delete_prefix(table, unit)
                for key, value in self._inner.scan(table, unit):
                    self._memory.put(table, key, value)
            else:
                self._memory.replace_group(table, unit, list(self._inner.scan(table, unit)))
            self._loaded.add((table, unit))
        return True

    def _is_loaded(self, table: str, key: bytes) -> bool:
        if table in self._uncached:
            return False
        if table in self._grouped:
            return (table, prefix_group(key)) in self._loaded
        return (table, _WHOLE) in self._loaded

    def get(self, table: str, key: bytes) -> bytes | None:
        if self._cached(table, key):
            return self._memory.get(table, key)
        return self._inner.get(table, key)

    def scan(self, table: str, prefix: bytes = b"", start: bytes | None = None) -> Rows:
        if self._cached(table, prefix):
            return self._memory.scan(table, prefix, start)
        return self._inner.scan(table, prefix, start)

    def count(self, table: str, prefix: bytes = b"") -> int:
        if self._cached(table, prefix):
            return self._memory.count(table, prefix)
        return self._inner.count(table, prefix)

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self._inner.put(table, key, value)  # checks the table and the key first
        if table not in self._uncached and self._is_loaded(table, key):
            self._memory.put(table, key, value)

    def defer(self, owner) -> int:
        """Rows of the queue table kept by `owner` (LmdbStore.defer) while that
        table is not cached here (a cached copy would miss them); else 0."""
        return self._inner.defer(owner) if QUEUE in self._uncached else 0

    def delete(self, table: str, key: bytes) -> None:
        self._inner.delete(table, key)
        self._memory.delete(table, key)

    def delete_many(self, table: str, keys: list[bytes]) -> None:
        self._inner.delete_many(table, keys)
        if table not in self._uncached:
            self._memory.delete_many(table, keys)

    def delete_prefix(self, table: str, prefix: bytes) -> int:
        removed = self._inner.delete_prefix(table, prefix)
        self._memory.delete_prefix(table, prefix)
        return removed

    def invalidate(self, table: str, prefix: bytes = b"") -> None:
        unit = self._unit(table, prefix)
        if unit is None:  # a prefix spanning groups: drop every loaded group under it
            dropped = [(t, u) for t, u in self._loaded if t == table and u.startswith(prefix)]
        else:
            dropped = [(table, unit)]
            prefix = unit
        self._loaded.difference_update(dropped)
        self._memory.delete_prefix(table, prefix)

    def flush(self) -> None:
        self._inner.flush()

    def close(self) -> None:
        self._memory.close()
        self._loaded.clear()
        self._inner.close()
