"""The retained-message store of a worker: replace on publish, delete on an
empty payload, match on subscribe, with the limits of the `retained.*` keys.

Modes: with a memory index (ram, disc) the worker answers subscriptions from
memory; in disc_only the index is LMDB itself and nothing is held in memory.
Every worker of a node serves the same retained set: the worker a retained
PUBLISH arrives on writes it to the store and tells its peers (`apply`), and
they update their memory index without writing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from actormq.actors.messages import Message
from actormq.storage.records import decode_message, encode_message, retained_key
from actormq.transport.topics import has_wildcard, matches

log = logging.getLogger("actormq.retain")


class RetainedStore:
    """Retained messages by topic name."""

    def __init__(self, store=None, in_memory: bool = True, max_messages: int = 0,
                 max_payload_size: int = 0, expiry_interval: int = 0) -> None:
        self._store = store                  # None: ram only
        self._memory: dict[str, Message] | None = {} if in_memory else None
        self.max_messages = max_messages
        self.max_payload_size = max_payload_size
        self.expiry_interval = expiry_interval

    def load(self) -> int:
        if self._store is None or self._memory is None:
            return len(self)
        for key, value in self._store.scan("retained"):
            message, _ = decode_message(value)
            self._memory[key.decode()] = message
        return len(self._memory)

    def __len__(self) -> int:
        if self._memory is not None:
            return len(self._memory)
        return self._store.count("retained")

    def snapshot(self) -> list[Message]:
        """Every retained message held in memory (for a restarted peer)."""
        return list(self._memory.values()) if self._memory is not None else []

    def accepts(self, message: Message) -> bool:
        """False when the message is too large to retain (it is still delivered)."""
        return not (self.max_payload_size and len(message.payload) > self.max_payload_size)

    def retain(self, message: Message, persist: bool = True) -> bool:
        """Store, replace or (empty payload) delete; False when refused by a limit."""
        topic = message.topic_name
        if not message.payload:
            self._delete(topic, persist)
            return True
        if not self.accepts(message):
            log.debug("retained message on %s too large, not stored", topic)
            return False
        if self.max_messages and not self._exists(topic) and len(self) >= self.max_messages:
            log.debug("retained store full (%d), %s not stored", self.max_messages, topic)
            return False
        if message.expires_at is None and self.expiry_interval:
            message = replace(message, expires_at=message.timestamp + self.expiry_interval)
        if self._memory is not None:
            self._memory[topic] = message
        if persist and self._store is not None:
            self._store.put("retained", retained_key(topic), encode_message(message))
        return True

    def match(self, topic_filter: str) -> list[Message]:
        """Every unexpired retained message whose topic matches the filter."""
        now = time.time()
        if not has_wildcard(topic_filter):
            found = self._get(topic_filter)
            candidates = [found] if found is not None else []
        else:
            candidates = [m for m in self._all() if matches(topic_filter, m.topic_name)]
        live = []
        for message in candidates:
            if message.expired(now):
                self._delete(message.topic_name, True)
            else:
                live.append(message)
        return live

    def _exists(self, topic: str) -> bool:
        if self._memory is not None:
            return topic in self._memory
        return self._store.get("retained", retained_key(topic)) is not None

    def _get(self, topic: str) -> Message | None:
        if self._memory is not None:
            return self._memory.get(topic)
        value = self._store.get("retained", retained_key(topic))
        return decode_message(value)[0] if value is not None else None

    def _all(self):
        if self._memory is not None:
            return list(self._memory.values())
        return [decode_message(value)[0] for _key, value in self._store.scan("retained")]

    def _delete(self, topic: str, persist: bool) -> None:
        if self._memory is not None:
            self._memory.pop(topic, None)
        if persist and self._store is not None:
            self._store.delete("retained", retained_key(topic))
