"""The ACL cache of one connection, with EMQX 4 semantics.

At most `max_size` (publish|subscribe, topic) results (a `Verdict`, or
anything with a truth value meaning allowed), the oldest dropped
first; a result older than `ttl` seconds is not used. `AclGeneration` is
shared by a worker's caches: bumping it (`actormq acl reload`, SIGHUP)
empties every cache at its next use; `clear()` empties one (management API).

`allowed_until` is the part of the cache the core reads itself, before it
runs the authorization chain at all (see `Plugin.allowed_publish`): the
publish topics whose cached verdict is a plain allow, each with the
monotonic time its entry expires. Only a plain allow goes in, never a
deny nor an allow with limits; an entry leaves it whenever its cache entry
leaves (expired, evicted, replaced, purged), and `clear()` empties it in
place, so what the core holds is never staler than the cache. A retired
cache (its client went, or another connection took it over) takes no more
entries there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from actormq.auth.acl_rules import Action

_ACCESS_NAMES = {Action.PUBLISH: "publish", Action.SUBSCRIBE: "subscribe"}


class AclGeneration:
    """A counter every cache of a worker compares with: a newer one means start empty."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1


@dataclass(frozen=True, slots=True)
class CachedResult:
    value: Any
    stored_at: float
    updated_wall: float


class AclCache:
    __slots__ = ("max_size", "ttl", "allowed_until", "owner", "retired", "_entries", "_generation",
                 "_seen_generation", "_clock")

    def __init__(self, max_size: int = 32, ttl: float = 60.0, generation: AclGeneration | None = None,
                 clock=time.monotonic, owner: Any = None) -> None:
        self.max_size, self.ttl, self._clock = max_size, ttl, clock
        self.allowed_until: dict[str, float] = {}
        self.owner = owner          # the ClientInfo of the connection it was made for
        self.retired = False
        self._entries: dict[tuple[Action, str], CachedResult] = {}
        self._generation = generation or AclGeneration()
        self._seen_generation = self._generation.value

    def get(self, action: Action, topic: str) -> Any:
        """The cached result, or None when absent, expired or purged."""
        if self._seen_generation != self._generation.value:
            self.clear()
            return None
        entry = self._entries.get((action, topic))
        if entry is None:
            return None
        if self._clock() - entry.stored_at >= self.ttl:
            del self._entries[(action, topic)]
            if action == Action.PUBLISH:
                self.allowed_until.pop(topic, None)
            return None
        return entry.value

    def put(self, action: Action, topic: str, value: Any) -> None:
        if self.max_size <= 0:
            return
        self._drop_if_purged()
        key = (action, topic)
        entries, allowed = self._entries, self.allowed_until
        entries.pop(key, None)
        if action == Action.PUBLISH:
            allowed.pop(topic, None)
        while len(entries) >= self.max_size:
            evicted = next(iter(entries))
            del entries[evicted]
            if evicted[0] == Action.PUBLISH:
                allowed.pop(evicted[1], None)
        stored_at = self._clock()
        entries[key] = CachedResult(value, stored_at, time.time())
        if action == Action.PUBLISH and getattr(value, "plain", False) is True and not self.retired:
            allowed[topic] = stored_at + self.ttl

    def _drop_if_purged(self) -> None:
        if self._seen_generation != self._generation.value:
            self.clear()

    def clear(self) -> None:
        self._entries.clear()
        self.allowed_until.clear()
        self._seen_generation = self._generation.value

    def retire(self) -> None:
        """Empty it for good: its connection is gone."""
        self.retired = True
        self.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def dump(self) -> list[dict]:
        """The entries as EMQX 4's `GET /api/v4/clients/{id}/acl_cache` lists them."""
        now = self._clock()
        return [{"access": _ACCESS_NAMES.get(action, "pubsub"), "topic": topic,
                 "result": "allow" if getattr(entry.value, "allowed", entry.value) else "deny",
                 "updated_time": int(entry.updated_wall * 1000)}
                for (action, topic), entry in self._entries.items() if now - entry.stored_at < self.ttl]
