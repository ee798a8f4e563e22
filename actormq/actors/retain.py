"""The retained-message store of a worker: replace on publish, delete on an
empty payload, match on subscribe, with the limits of the `retained.*` keys.

Modes: with a memory index (ram, disc) the worker answers subscriptions from
memory; in disc_only the index is LMDB itself and nothing is held in memory.
Every worker of a node serves the same retained set: the worker a retained
PUBLISH arrives on writes it to the store and tells its peers (`apply`), and
they update their memory index without writing.

Limits: a message over `max_payload_size`, a new topic beyond `max_messages`
(after expired messages made room) or a row the store refuses (full) is
delivered as usual but not retained. A retained message expires at its MQTT 5
message expiry when it has one, otherwise `expiry_interval` seconds after it
was published; expiry is decided when it is read, so nothing is added to the
message a subscriber receives.
"""

from __future__ import annotations

import logging
import time

from actormq.actors.messages import Message
from actormq.errors import StorageFullError
from actormq.storage.records import decode_message, encode_message, retained_key
from actormq.transport.topics import has_wildcard, matches

log = logging.getLogger("actormq.retain")

PURGE_SECONDS = 1.0  # a full store looks for expired messages at most this often


class RetainedStore:
    """Retained messages by topic name."""

    def __init__(self, store=None, in_memory: bool = True, max_messages: int = 0,
                 max_payload_size: int = 0, expiry_interval: int = 0) -> None:
        self._store = store                  # None: ram only
        self._memory: dict[str, Message] | None = {} if in_memory else None
        self.max_messages = max_messages
        self.max_payload_size = max_payload_size
        self.expiry_interval = expiry_interval
        self._purged_at = 0.0

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

    def expired(self, message: Message, now: float) -> bool:
        if message.expires_at is not None:
            return now >= message.expires_at
        return bool(self.expiry_interval) and now >= message.timestamp + self.expiry_interval

    def retain(self, message: Message, persist: bool = True) -> bool:
        """Store, replace or (empty payload) delete; False when refused by a limit."""
        topic = message.topic_name
        if not message.payload:
            self._delete(topic, persist)
            return True
        if not self.accepts(message):
            log.debug("retained message on %s too large, not stored", topic)
            return False
        if self.max_messages and not self._exists(topic) and not self._has_room():
            log.debug("retained store full (%d), %s not stored", self.max_messages, topic)
            return False
        if persist and self._store is not None:
            try:
                self._store.put("retained", retained_key(topic), encode_message(message))
            except StorageFullError as exc:  # the store logs the episode
                log.debug("retained message on %s not stored: %s", topic, exc)
                return False
        if self._memory is not None:
            self._memory[topic] = message
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
            if self.expired(message, now):
                self._delete(message.topic_name, True)
            else:
                live.append(message)
        return live

    def messages(self) -> list[Message]:
        """Every unexpired retained message, by topic name."""
        now = time.time()
        return sorted((m for m in self._all() if not self.expired(m, now)), key=lambda m: m.topic_name)

    def delete(self, topic: str, persist: bool = True) -> bool:
        """Forget the retained message of one topic; False when there was none."""
        if not self._exists(topic):
            return False
        self._delete(topic, persist)
        return True

    def delete_expired(self, persist: bool = True) -> int:
        """Forget every expired retained message; how many there were."""
        now = time.time()
        expired = [m.topic_name for m in self._all() if self.expired(m, now)]
        for topic in expired:
            self._delete(topic, persist)
        return len(expired)

    def _has_room(self) -> bool:
        if len(self) < self.max_messages:
            return True
        now = time.time()
        if now - self._purged_at < PURGE_SECONDS:
            return False
        self._purged_at = now
        for message in self._all():
            if self.expired(message, now):
                self._delete(message.topic_name, True)
        return len(self) < self.max_messages

    def _exists(self, topic: str) -> bool:
        if self._memory is not None:
            return topic in self._memory
        return self._store.get("retained", retained_key(topic)) is not None

    def _get(self, topic: str) -> Message | None:
        if self._memory is not None:
            return self._memory.get(topic)
        value = self._store.get("retained", retained_key(topic))
        return decode_message(value)[0] if value is not None else None

    def _all(self) -> list[Message]:
        if self._memory is not None:
            return list(self._memory.values())
        return [decode_message(value)[0] for _key, value in self._store.scan("retained")]

    def _delete(self, topic: str, persist: bool) -> None:
        if self._memory is not None:
            self._memory.pop(topic, None)
        if persist and self._store is not None:
            self._store.delete("retained", retained_key(topic))
