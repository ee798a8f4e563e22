"""RamStore: the ram mode, and the memory half of the disc mode (CachedStore).

Each table is a dict of rows plus a sorted index of key *groups* (base.group_of):
a queue table has one group per client, holding that client's keys in order,
so appending to a queue is a list append and a scan by client prefix touches
only that client's keys; a key without a NUL is a group of its own. Writes are
"durable" at once: when_durable calls back immediately. Not thread-safe: one
owner thread.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable

from actormq.storage.base import (GROUP_END, Rows, check_key, check_table, group_of, prefix_end, prefix_group,
                                  scan_floor)

_PLAIN = None  # group entry of a key without NUL: the key is its own group


class _Table:
    __slots__ = ("rows", "groups", "order")

    def __init__(self) -> None:
        self.rows: dict[bytes, bytes] = {}
        self.groups: dict[bytes, list[bytes] | None] = {}
        self.order: list[bytes] = []

    def insert(self, key: bytes) -> None:
        group = group_of(key)
        if group not in self.groups:
            insort(self.order, group)
            self.groups[group] = [key] if GROUP_END in key else _PLAIN
            return
        keys = self.groups[group]
        if key > keys[-1]:
            keys.append(key)
        else:
            insort(keys, key)

    def remove(self, key: bytes) -> None:
        group = group_of(key)
        keys = self.groups[group]
        if keys is not _PLAIN:
            del keys[bisect_left(keys, key)]
            if keys:
                return
        self._drop_group(group)

    def remove_many(self, doomed: list[bytes]) -> None:
        """Remove these keys (each present, none twice). A run of them that is
        also a run of a group's keys goes in one slice deletion: acknowledging
        a queue in order removes from the front of a long list, and one
        deletion per key would move the rest of the list each time."""
        doomed = sorted(doomed)
        count = len(doomed)
        i = 0
        while i < count:
            key = doomed[i]
            group = group_of(key)
            keys = self.groups[group]
            i += 1
            if keys is _PLAIN:
                self._drop_group(group)
                continue
            start = bisect_left(keys, key)
            end = start + 1
            size = len(keys)
            while i < count and end < size and keys[end] == doomed[i]:
                end += 1
                i += 1
            del keys[start:end]
            if not keys:
                self._drop_group(group)

    def _drop_group(self, group: bytes) -> None:
        del self.groups[group]
        del self.order[bisect_left(self.order, group)]

    def keys_under(self, prefix: bytes, start: bytes | None = None) -> list[bytes]:
        group = prefix_group(prefix)
        if group is not None:
            return _slice(self.groups.get(group) or [], prefix, start)
        found: list[bytes] = []
        for name in _slice(self.order, prefix):
            keys = self.groups[name]
            if keys is _PLAIN:
                found.append(name)
            else:
                found.extend(keys)
        return found if start is None else found[bisect_left(found, start):]

    def count_under(self, prefix: bytes) -> int:
        if not prefix:
            return len(self.rows)
        group = prefix_group(prefix)
        if group is not None:
            keys = self.groups.get(group) or []
            return len(keys) if prefix == group else len(_slice(keys, prefix))
        return sum(1 if self.groups[name] is _PLAIN else len(self.groups[name])
                   for name in _slice(self.order, prefix))


def _slice(sorted_keys: list[bytes], prefix: bytes, start: bytes | None = None) -> list[bytes]:
    """The keys under `prefix` (from `start`) of a sorted list."""
    floor = scan_floor(prefix, start)
    first = bisect_left(sorted_keys, floor) if floor else 0
    end = prefix_end(prefix)
    stop = len(sorted_keys) if end is None else bisect_left(sorted_keys, end, first)
    return sorted_keys[first:stop]


class RamStore:
    """Tables in memory; nothing survives close()."""

    def __init__(self) -> None:
        self._tables: dict[str, _Table] = {}

    def _table(self, table: str) -> _Table:
        found = self._tables.get(table)
        if found is None:
            check_table(table)
            found = self._tables[table] = _Table()
        return found

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._table(table).rows.get(key)

    def defer(self, owner) -> int:
        """Rows are not deferred here (see LmdbStore.defer): a put is as cheap."""
        return 0

    def put(self, table: str, key: bytes, value: bytes) -> None:
        check_key(table, key)
        tbl = self._table(table)
        if key not in tbl.rows:
            tbl.insert(key)
        tbl.rows[key] = bytes(value)

    def delete(self, table: str, key: bytes) -> None:
        tbl = self._table(table)
        if tbl.rows.pop(key, None) is not None:
            tbl.remove(key)

    def delete_many(self, table: str, keys: list[bytes]) -> None:
        tbl = self._table(table)
        pop = tbl.rows.pop
        present = [key for key in keys if pop(key, None) is not None]
        if present:
            tbl.remove_many(present)

    def replace_group(self, table: str, group: bytes, rows: list[tuple[bytes, bytes]]) -> None:
        """Make `rows` the whole of key group `group` (base.group_of): a client's
        queue read back from LMDB, sorted by key, all of it in one go."""
        self.delete_prefix(table, group)
        if not rows:
            return
        tbl = self._table(table)
        tbl.rows.update(rows)
        tbl.groups[group] = [key for key, _ in rows]
        insort(tbl.order, group)

    def scan(self, table: str, prefix: bytes = b"", start: bytes | None = None) -> Rows:
        tbl = self._table(table)
        values = tbl.rows
        return iter([(key, values[key]) for key in tbl.keys_under(prefix, start)])

    def count(self, table: str, prefix: bytes = b"") -> int:
        return self._table(table).count_under(prefix)

    def delete_prefix(self, table: str, prefix: bytes) -> int:
        tbl = self._table(table)
        keys = tbl.keys_under(prefix)
        group = prefix_group(prefix)
        if group is not None and prefix == group and keys:
            for key in keys:
                del tbl.rows[key]
            del tbl.groups[group]
            del tbl.order[bisect_left(tbl.order, group)]
            return len(keys)
        for key in keys:
            del tbl.rows[key]
            tbl.remove(key)
        return len(keys)

    def when_durable(self, callback: Callable[[], None], on_error: Callable | None = None,
                     loop=None) -> None:
        callback()

    def when_stored(self, callback: Callable[[], None], on_error: Callable | None = None,
                    loop=None) -> None:
        callback()

    def invalidate(self, table: str, prefix: bytes = b"") -> None:
        """Nothing is cached: a no-op."""

    def flush(self) -> None:
        """Nothing is pending: a no-op."""

    def close(self) -> None:
        self._tables.clear()
