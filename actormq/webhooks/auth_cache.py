"""The auth cache: `ok` answers of auth_on_* webhooks kept for their `Cache-Control: max-age`.

Owns the entries, their expiry and the hit/miss counters. The key is the
endpoint, the hook and the request without `payload` and `peer_port`
(VerneMQ's key) — the fields of the event the body is made from, so that a
hit costs no body; a caller that has those fields as a tuple (`key`) gives
that instead, and then not even the event is made. An entry past its age is a miss when looked up and is
removed by `sweep`, which the provider runs periodically; the cache holds at
most `max_entries`, evicting the least recently used. The cached answer
keeps its modifiers except a rewritten payload (as VerneMQ).
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from dataclasses import replace
from typing import Any, Callable, Mapping

import orjson

from actormq.webhooks.vmq_answers import Answer

_NOT_IN_KEY = frozenset({"payload", "peer_port"})
STATS = ("hits", "misses", "entries")


def cache_key(endpoint: str, hook: str, request: Mapping[str, Any]) -> tuple[str, str, bytes]:
    rest = {name: value for name, value in request.items() if name not in _NOT_IN_KEY}
    return endpoint, hook, orjson.dumps(rest, default=_plain, option=orjson.OPT_SORT_KEYS)


def _plain(value: Any) -> Any:
    """What orjson cannot write itself: bytes (as hex) and read-only mappings."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not part of a request: {value!r}")


class AuthCache:
    """LRU + TTL cache of auth answers, with counters per (endpoint, hook)."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple, tuple[float, Answer]] = OrderedDict()
        self._counters: Counter[tuple[str, str, str]] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, endpoint: str, hook: str, body: Mapping[str, Any] | None,
               key: tuple | None = None) -> Answer | None:
        """The cached answer for the request `body` (or the request whose fields without
        payload and peer port are `key`), None when there is none (a miss)."""
        answer = self._get(cache_key(endpoint, hook, body) if key is None else (endpoint, hook, key))
        self._counters["misses" if answer is None else "hits", endpoint, hook] += 1
        return answer

    def hit(self, endpoint: str, hook: str, key: tuple) -> Answer | None:
        """The cached answer for the request whose fields are `key`, counted as a hit;
        None, counted as nothing, when there is none (the caller's `lookup` counts the miss)."""
        full_key = (endpoint, hook, key)
        entries = self._entries
        entry = entries.get(full_key)    # `_get`, inline: one call per known client's CONNECT
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._remove(full_key)
            return None
        entries.move_to_end(full_key)
        self._counters["hits", endpoint, hook] += 1
        return entry[1]

    def _get(self, key: tuple) -> Answer | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def insert(self, endpoint: str, hook: str, body: Mapping[str, Any] | None, max_age: float,
               answer: Answer, key: tuple | None = None) -> None:
        if self.max_entries <= 0 or max_age <= 0:
            return
        key = cache_key(endpoint, hook, body) if key is None else (endpoint, hook, key)
        if key in self._entries:
            self._remove(key)
        modifiers = {name: value for name, value in answer.modifiers.items() if name != "payload"}
        self._entries[key] = (self._clock() + max_age, replace(answer, modifiers=modifiers))
        self._counters["entries", endpoint, hook] += 1
        while len(self._entries) > self.max_entries:
            self._remove(next(iter(self._entries)))

    def sweep(self) -> int:
        """Remove every expired entry; the number removed."""
        now = self._clock()
        expired = [key for key, (expiry, _) in self._entries.items() if expiry <= now]
        for key in expired:
            self._remove(key)
        return len(expired)

    def clear(self) -> None:
        """Empty the cache and reset its counters."""
        self._entries.clear()
        self._counters.clear()

    def stats(self) -> list[dict[str, Any]]:
        """Rows {stat, endpoint, hook, value}: hits, misses and entries per endpoint and hook."""
        return [{"stat": stat, "endpoint": endpoint, "hook": hook, "value": value}
                for (stat, endpoint, hook), value in sorted(self._counters.items())
                if value or stat != "entries"]

    def _remove(self, key: tuple) -> None:
        del self._entries[key]
        self._counters["entries", key[0], key[1]] -= 1
