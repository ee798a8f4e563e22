"""The Queue: one per session. Owns the messages waiting for the session (the
online backlog beyond the in-flight window and the offline queue), its limits
and its drop policy, and their persistence.

Takes: enqueue (a Delivery), pop (the next to send), ack (a delivered one is
done), attach/detach of the session (online/offline limits). Sends: nothing;
it reports drops to the worker's counters.

Durability rule: a QoS1/2 message for a persistent session is written to the
store (`put`) before enqueue returns; the publisher's PUBACK/PUBREC waits for
`Store.when_durable` whenever an enqueue wrote to a disc store, so what the
broker acknowledged is in LMDB (see Session.publish_acked).

Queue types: fifo delivers oldest first, lifo newest first. When full, `drop`
decides: "newest" refuses the incoming message, "oldest" evicts the message
that has waited longest. In disc_only mode the memory holds at most a window
of the persisted backlog; the rest is read back from LMDB in batches, so
memory does not grow with the queue.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace

from actormq.actors.messages import Delivery
from actormq.errors import StorageFullError
from actormq.storage.records import decode_message, encode_message, queue_key, queue_prefix, split_queue_key

log = logging.getLogger("actormq.queue")

DISC_ONLY_WINDOW = 1000


@dataclass(frozen=True, slots=True)
class QueueLimits:
    max_online: int = 1000
    max_offline: int = 1000
    lifo: bool = False
    drop_oldest: bool = False


class QueueFull(Exception):
    """Raised by enqueue when the store refuses the message (quota exceeded)."""


class Queue:
    """Messages waiting for one session, in delivery order."""

    __slots__ = ("client_id", "limits", "online", "dropped", "_mem", "_store", "_durable",
                 "_next_seq", "_backlog", "_window", "_last_loaded")

    def __init__(self, client_id: str, limits: QueueLimits, store=None, durable: bool = False,
                 window: int | None = None) -> None:
        self.client_id = client_id
        self.limits = limits
        self.online = False
        self.dropped = 0
        self._mem: deque[Delivery] = deque()
        self._store = store          # None: not persistent
        self._durable = durable      # True when the store writes to disc
        self._next_seq = 1
        self._backlog = 0            # persisted entries not held in memory (disc_only)
        self._window = window if not limits.lifo else None
        self._last_loaded = 0

    def __len__(self) -> int:
        return len(self._mem) + self._backlog

    @property
    def persistent(self) -> bool:
        return self._store is not None

    def load(self) -> int:
        """Read this session's persisted queue back (after restart or takeover)."""
        if self._store is None:
            return 0
        self._mem.clear()
        self._backlog = 0
        count = 0
        for key, value in self._store.scan("queue", queue_prefix(self.client_id)):
            _client, seq = split_queue_key(key)
            self._next_seq = max(self._next_seq, seq + 1)
            count += 1
            if self._window is not None and len(self._mem) >= self._window:
                self._backlog += 1
                continue
            self._mem.append(self._decode(seq, value))
            self._last_loaded = seq
        return count

    def enqueue(self, delivery: Delivery) -> bool:
        """Add a delivery; False when it was dropped. Raises QueueFull when the
        store is out of space; returns True and sets `wrote_durable` semantics via
        the return of `persist` otherwise."""
        limit = self.limits.max_online if self.online else self.limits.max_offline
        if limit and len(self) >= limit:
            if not self.limits.drop_oldest or not self._mem:
                self.dropped += 1
                log.debug("queue of %s full (%d): dropped message on %s",
                          self.client_id, limit, delivery.message.topic_name)
                return False
            evicted = self._mem.popleft()
            self.discard(evicted)
            self.dropped += 1
            log.debug("queue of %s full (%d): dropped oldest message", self.client_id, limit)
        seq = self._next_seq
        self._next_seq += 1
        delivery.seq = seq
        if self._store is not None and (delivery.qos > 0 or self._window is not None):
            self._persist(delivery)
            if self._window is not None and (self._backlog or len(self._mem) >= self._window):
                self._backlog += 1
                return True
        self._mem.append(delivery)
        return True

    def enqueue_wrote_durable(self, delivery: Delivery) -> bool:
        """True when enqueuing this delivery writes to a disc store."""
        return self._durable and (delivery.qos > 0 or self._window is not None)

    def pop(self) -> Delivery | None:
        """The next delivery to send, or None."""
        if not self._mem and self._backlog:
            self._refill()
        if not self._mem:
            return None
        return self._mem.pop() if self.limits.lifo else self._mem.popleft()

    def push_front(self, delivery: Delivery) -> None:
        """Put back a delivery that could not be sent yet (kept in its place)."""
        if self.limits.lifo:
            self._mem.append(delivery)
        else:
            self._mem.appendleft(delivery)

    def discard(self, delivery: Delivery) -> None:
        """A delivery left the queue for good (acknowledged, expired, dropped)."""
        if self._store is not None and delivery.seq and (delivery.qos > 0 or self._window is not None):
            self._store.delete("queue", queue_key(self.client_id, delivery.seq))

    def mark_sent(self, delivery: Delivery, packet_id: int) -> None:
        """Nothing to store: a persisted delivery stays until acknowledged."""

    def clear(self) -> None:
        """Drop everything (clean start, session end)."""
        self._mem.clear()
        self._backlog = 0
        if self._store is not None:
            self._store.delete_prefix("queue", queue_prefix(self.client_id))

    @property
    def prefix(self) -> bytes:
        return queue_prefix(self.client_id)

    def extract(self, seqs: set[int]) -> list[Delivery]:
        """Take the deliveries with these sequence numbers out of the queue."""
        taken = [d for d in self._mem if d.seq in seqs]
        if taken:
            self._mem = deque(d for d in self._mem if d.seq not in seqs)
        return taken

    def forget(self) -> None:
        """Drop the memory copy only; persisted rows stay for the next owner."""
        self._mem.clear()
        self._backlog = 0
        if self._store is not None:
            self._store.invalidate("queue", self.prefix)

    def snapshot(self) -> list[Delivery]:
        """Every delivery held in memory, in order (for takeover hand-over)."""
        return list(self._mem)

    def _persist(self, delivery: Delivery) -> None:
        message = delivery.message
        if delivery.qos != message.qos or delivery.retain != message.retain or delivery.subscription_ids:
            props = dict(message.properties)
            if delivery.subscription_ids:
                props["subscription_identifier"] = list(delivery.subscription_ids)
            message = replace(message, qos=delivery.qos, retain=delivery.retain, properties=props)
        try:
            self._store.put("queue", queue_key(self.client_id, delivery.seq), encode_message(message))
        except StorageFullError as exc:
            log.warning("store full, refusing message for %s: %s", self.client_id, exc)
            raise QueueFull(str(exc)) from exc

    def _refill(self) -> None:
        start = queue_key(self.client_id, self._last_loaded + 1)
        prefix = queue_prefix(self.client_id)
        for key, value in self._store.scan("queue", prefix):
            if key < start:
                continue
            _client, seq = split_queue_key(key)
            self._mem.append(self._decode(seq, value))
            self._last_loaded = seq
            self._backlog -= 1
            if len(self._mem) >= self._window or self._backlog <= 0:
                break
        self._backlog = max(self._backlog, 0)

    @staticmethod
    def _decode(seq: int, value: bytes) -> Delivery:
        message, _packet_id = decode_message(value)
        sub_ids = ()
        if "subscription_identifier" in message.properties:
            props = dict(message.properties)
            sub_ids = tuple(props.pop("subscription_identifier"))
            message = replace(message, properties=props)
        return Delivery(message, message.qos, message.retain, sub_ids, seq)
