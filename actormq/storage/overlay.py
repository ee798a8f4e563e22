"""PendingOverlay: what reads see of the writes issued but not yet committed.

Per table, the latest pending op of each key: puts (key -> (seq, value)) and
deletes (key -> seq) are kept apart, because a scan must list the pending
puts in its range but only needs to look its committed rows up in the
deletes. Draining a queue deletes the rows it has read while the writer
commits them behind it: thousands of pending deletes, every one below where
the next page starts, and a scan that went through them all for each page
would cost the drain more than reading the page. With them apart a page
costs a copy of the deletes (one C-level dict copy) and a walk through the
pending puts under its prefix.

Not thread-safe: PendingWrites uses it under its lock.
"""

from __future__ import annotations

from collections.abc import Iterable

_NONE: dict = {}  # the puts or deletes of a table with none (never written to)


class PendingOverlay:
    """table -> key -> the latest pending op of the key, split into puts and deletes."""

    __slots__ = ("_puts", "_deletes")

    def __init__(self) -> None:
        self._puts: dict[str, dict[bytes, tuple[int, bytes]]] = {}
        self._deletes: dict[str, dict[bytes, int]] = {}

    def note(self, seq: int, table: str, key: bytes, value: bytes | None) -> None:
        """Op `seq` writes `value` to `key` (None: deletes it)."""
        if value is None:
            self._deletes.setdefault(table, {})[key] = seq
            puts = self._puts.get(table)
            if puts:
                puts.pop(key, None)
        else:
            self._puts.setdefault(table, {})[key] = (seq, value)
            deletes = self._deletes.get(table)
            if deletes:
                deletes.pop(key, None)

    def note_puts(self, table: str, ops: list[tuple[int, str, bytes, bytes]]) -> None:
        """`ops`, puts to `table` in order, as `note` of each."""
        self._puts.setdefault(table, {}).update({key: (seq, value) for seq, _, key, value in ops})
        deletes = self._deletes.get(table)
        if deletes:
            for _, _, key, _ in ops:
                deletes.pop(key, None)

    def note_deletes(self, first_seq: int, table: str, keys: list[bytes]) -> None:
        """Ops `first_seq`, `first_seq + 1`, ... delete `keys`, in order."""
        self._deletes.setdefault(table, {}).update(zip(keys, range(first_seq, first_seq + len(keys))))
        puts = self._puts.get(table)
        if puts:
            for key in keys:
                puts.pop(key, None)

    def forget(self, ops: Iterable[tuple[int, str, bytes, bytes | None]]) -> None:
        """These ops are committed: drop each key whose latest op is one of them."""
        for seq, table, key, value in ops:
            if value is None:
                deletes = self._deletes.get(table, _NONE)
                if deletes.get(key) == seq:
                    del deletes[key]
            else:
                puts = self._puts.get(table, _NONE)
                entry = puts.get(key)
                if entry is not None and entry[0] == seq:
                    del puts[key]

    def lookup(self, table: str, key: bytes) -> tuple[bool, bytes | None]:
        """(True, value or None if deleted) when `key` has a pending op."""
        entry = self._puts.get(table, _NONE).get(key)
        if entry is not None:
            return True, entry[1]
        return key in self._deletes.get(table, _NONE), None

    def rows(self, table: str, prefix: bytes) -> list[tuple[bytes, bytes | None]]:
        """Pending rows under `prefix`, sorted by key; a None value is a pending delete."""
        found = [(key, entry[1]) for key, entry in self._puts.get(table, _NONE).items()
                 if key.startswith(prefix)]
        found += [(key, None) for key in self._deletes.get(table, _NONE) if key.startswith(prefix)]
        found.sort()
        return found

    def page(self, table: str, prefix: bytes, floor: bytes) -> tuple[list[tuple[bytes, bytes]], dict]:
        """The pending puts under `prefix` from `floor` on, sorted by key, and a
        copy of the table's pending deletes (key -> seq), to look rows up in."""
        puts = [(key, entry[1]) for key, entry in self._puts.get(table, _NONE).items()
                if key >= floor and key.startswith(prefix)]
        puts.sort()
        deletes = self._deletes.get(table)
        return puts, dict(deletes) if deletes else _NONE
