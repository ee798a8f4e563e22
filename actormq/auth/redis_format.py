"""VerneMQ `vmq_diversity` Redis records: the key and the value, as VerneMQ
users already have them.

Key: the compact JSON array `["mountpoint","clientid","username"]`.
Value: a JSON object with `passhash` (bcrypt) and optional `publish_acl` /
`subscribe_acl` lists of `{"pattern": "a/%u/#", "max_qos": 1,
"allowed_retain": false, "max_payload_size": 128, "modifiers": {...}}`
(patterns take `%u` username, `%c` client id, `%m` mountpoint). Optional
`"superuser": true` skips the ACL (not in VerneMQ; EMQX users expect it).
Register modifiers may come under `"register_modifiers"` (VerneMQ's names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from actormq.auth.acl_rules import Action, ClientInfo, expand_topic
from actormq.auth.hashes import HashError, StoredHash, parse_hash
from actormq.auth.verdicts import Verdict
from actormq.transport.topics import matches

_PUBLISH_MODIFIERS = {"topic": "topic_name", "payload": "payload", "qos": "qos", "retain": "retain"}


class RecordError(ValueError):
    """A stored record that is not in the vmq_diversity format."""


def redis_key(mountpoint: str, client_id: str, username: str | None) -> str:
    return json.dumps([mountpoint, client_id, username or ""], separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class AclEntry:
    pattern: str
    max_qos: int | None = None
    allowed_retain: bool | None = None
    max_payload_size: int | None = None
    modifiers: dict = field(default_factory=dict)

    def verdict_for(self, client: ClientInfo, topic: str) -> Verdict | None:
        pattern = expand_topic(self.pattern.replace("%m", client.mountpoint), client)
        if pattern is None or not matches(pattern, topic):
            return None
        return Verdict(True, self.max_qos, self.allowed_retain, self.max_payload_size, self.modifiers, "redis")


@dataclass(frozen=True, slots=True)
class RedisRecord:
    passhash: StoredHash
    publish_acl: tuple[AclEntry, ...] = ()
    subscribe_acl: tuple[AclEntry, ...] = ()
    superuser: bool = False
    register_modifiers: dict = field(default_factory=dict)

    def verdict(self, client: ClientInfo, action: Action, topic: str) -> Verdict:
        """The first matching entry's verdict; deny when none matches (as vmq_diversity)."""
        entries = self.publish_acl if action is Action.PUBLISH else self.subscribe_acl
        for entry in entries:
            found = entry.verdict_for(client, topic)
            if found is not None:
                return found
        return Verdict(False, source="redis")


def parse_record(text: str | bytes) -> RedisRecord:
    try:
        value = json.loads(text)
    except ValueError as problem:
        raise RecordError(f"value is not JSON ({problem})") from None
    if not isinstance(value, dict) or not isinstance(value.get("passhash"), str):
        raise RecordError("value must be a JSON object with a \"passhash\" string")
    try:
        passhash = parse_hash(value["passhash"])
    except HashError as problem:
        raise RecordError(f"passhash: {problem}") from None
    modifiers = value.get("register_modifiers") or {}
    if not isinstance(modifiers, dict):
        raise RecordError("register_modifiers must be an object")
    return RedisRecord(passhash, _entries(value.get("publish_acl"), "publish_acl", publish=True),
                       _entries(value.get("subscribe_acl"), "subscribe_acl", publish=False),
                       bool(value.get("superuser") or value.get("is_superuser")), modifiers)


def _entries(items: Any, what: str, publish: bool) -> tuple[AclEntry, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise RecordError(f"{what} must be a list")
    return tuple(_entry(item, what, publish) for item in items)


def _optional(item: dict, name: str, kind: type, what: str):
    value = item.get(name)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise RecordError(f"{what}: {name} must be a {kind.__name__}")
    return value


def _entry(item: Any, what: str, publish: bool) -> AclEntry:
    if not isinstance(item, dict) or not isinstance(item.get("pattern"), str) or not item["pattern"]:
        raise RecordError(f"each {what} entry is an object with a \"pattern\"")
    modifiers = item.get("modifiers") or {}
    if not isinstance(modifiers, dict):
        raise RecordError(f"{what}: modifiers must be an object")
    renamed = {}
    if publish:
        for name, value in modifiers.items():
            if name not in _PUBLISH_MODIFIERS:
                raise RecordError(f"{what}: unknown modifier {name!r} (known: {', '.join(_PUBLISH_MODIFIERS)})")
            renamed[_PUBLISH_MODIFIERS[name]] = value.encode() if name == "payload" else value
    return AclEntry(item["pattern"], _optional(item, "max_qos", int, what),
                    _optional(item, "allowed_retain", bool, what),
                    _optional(item, "max_payload_size", int, what), renamed)
