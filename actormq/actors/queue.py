"""The Queue: one per session. Owns the messages waiting for the session (the
online backlog beyond the in-flight window and the offline queue), its limits
and its drop policy, and their persistence.

Takes: enqueue (a Delivery), pop (the next to send), discard (a delivered one
is done), the session's online flag (online/offline limits). Sends: nothing;
it counts what its limits dropped in `dropped` and raises QueueFull when the
store refuses a message.

Deletes are batched: discard only notes the row, and `flush` deletes every
row noted since the last one in one store call. The broker flushes a queue at
the end of the event-loop round that discarded from it (the `schedule`
callback), as it flushes a connection's output; a queue without one deletes at
once. Whatever reads or hands over the stored rows flushes first. A delete
lost in a crash only means a redelivery, which QoS 1/2 allows.

Durability rule: a QoS1/2 message for a persistent session is written to the
store (`put`) before enqueue returns; the publisher's PUBACK/PUBREC waits for
`Store.when_durable` whenever an enqueue wrote to a disc store, so what the
broker acknowledged is in LMDB (see Session._defer_ack). A message the store
refuses raises QueueFull, and the publisher's ack says QUOTA_EXCEEDED.
A QoS 2 delivery that got its PUBREC keeps its row, marked with its packet id
(`release`), until PUBCOMP (`complete`); PUBREL goes out once that mark is
committed, so after a crash the session resends PUBREL for it, never the
message again (`released` after `load`).

Queue types: fifo delivers oldest first, lifo newest first. When full, `drop`
decides: "newest" refuses the incoming message, "oldest" evicts the message
that has waited longest. A limit of 0 means unlimited. In disc_only mode
(fifo) every queued message is persisted and the memory holds at most a
window of them; the rest (the backlog) is read back from the store a window at
a time, starting after the last row read, so memory does not grow with the
queue and a long backlog is read once. A row read back that a subscriber can
get as stored (QoS 1/2, no expiry, no properties) becomes a StoredDelivery:
nothing of it is decoded, and its PUBLISH is cut from the row's bytes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import islice
from types import MappingProxyType

from actormq.actors.messages import Delivery, Message
from actormq.errors import StorageFullError
from actormq.actors.stored_delivery import StoredDelivery
from actormq.storage.writer import ROW_OVERHEAD
from actormq.storage.records import (
    COMPACT_ROW_FIXED, RETAIN_FLAG, UTF8_MOST, decode_messages, encode_message, queue_ops, queue_prefix, queue_seq, sendable_flags, seq_suffix,
)

log = logging.getLogger("actormq.queue")

DISC_ONLY_WINDOW = 1000
_ROW_FIXED = COMPACT_ROW_FIXED + ROW_OVERHEAD    # a kept row's room besides its prefix, texts and payload


@dataclass(frozen=True, slots=True)
class QueueLimits:
    max_online: int = 1000
    max_offline: int = 1000
    lifo: bool = False
    drop_oldest: bool = False


NOTHING_HELD = ()   # the memory of a queue that never held a message: an empty deque costs 600 bytes
NOTHING_RELEASED = MappingProxyType({})     # the released rows of a queue that released none


class QueueFull(Exception):
    """Raised by enqueue when the store refuses the message (quota exceeded);
    the queue is left as it was."""


class Queue:
    """Messages waiting for one session, in delivery order."""

    __slots__ = ("client_id", "limits", "online", "dropped", "_mem", "_store", "_durable",
                 "_next_seq", "_backlog", "_window", "_last_loaded", "_discarded", "_schedule",
                 "released", "_prefix", "_unwritten", "_room", "durable_from_qos", "_row_fixed")

    def __init__(self, client_id: str, limits: QueueLimits, store=None, durable: bool = False,
                 window: int | None = None, schedule: Callable[[Queue], None] | None = None) -> None:
        self.client_id = client_id
        self._prefix = queue_prefix(client_id) if store is not None else b""    # of its rows
        self.limits = limits
        self.online = False
        self.dropped = 0
        self._mem: deque[Delivery] | tuple = NOTHING_HELD    # a deque from the first message on
        self._store = store          # None: not persistent
        self._durable = durable      # True when the store writes to disc
        self._next_seq = 1
        self._backlog = 0            # persisted entries not held in memory (window mode)
        self._window = window if store is not None and not limits.lifo else None
        self._last_loaded = 0        # highest seq that went into memory (window mode)
        # the lowest QoS whose enqueue writes to a disc store (3: none does)
        self.durable_from_qos = (0 if self._window is not None else 1) if durable else 3
        self._row_fixed = len(self._prefix) + _ROW_FIXED    # a kept row's room besides its texts and payload
        # shared empties until the first row is discarded or released (an idle
        # client's queue holds no list or dict of its own)
        self._discarded: list[bytes] | tuple = ()   # rows to delete at the next flush
        self._schedule = schedule
        self.released = NOTHING_RELEASED    # packet id -> seq of a QoS 2 row awaiting PUBCOMP
        self._unwritten: list[Delivery] | tuple = ()   # deliveries whose rows the store lets us keep
        self._room = 0               # bytes of rows we may still keep (counted at their most)

    def __len__(self) -> int:
        return len(self._mem) + self._backlog

    @property
    def persistent(self) -> bool:
        return self._store is not None

    @property
    def prefix(self) -> bytes:
        """The key prefix of this client's rows in the queue store."""
        return self._prefix or queue_prefix(self.client_id)

    def load(self) -> int:
        """Read this session's persisted queue back (after restart or takeover)."""
        if self._store is None:
            return 0
        self.flush()
        self._backlog = self._last_loaded = 0
        self.released = NOTHING_RELEASED
        count = seq = 0
        rows = []
        window = self._window
        for key, value in self._store.scan("queue", self._prefix):   # in seq order
            seq = queue_seq(key)
            count += 1
            if window is not None and len(rows) >= window:
                self._backlog += 1
                continue
            rows.append((key, value))
            self._last_loaded = seq
        memory = deque(self._deliveries(rows))
        self._mem = memory if memory else NOTHING_HELD
        self._next_seq = max(self._next_seq, seq + 1)
        return count

    def enqueue(self, delivery: Delivery) -> bool:
        """Add a delivery; False when it was dropped by the limit. Raises
        QueueFull when the store refuses it (nothing changes then)."""
        limit = self.limits.max_online if self.online else self.limits.max_offline
        full = bool(limit) and len(self._mem) + self._backlog >= limit     # len(self), inline
        if full and not self._can_evict():
            self.dropped += 1
            log.debug("queue of %s full (%d): dropped message on %s",
                      self.client_id, limit, delivery.message.topic_name)
            return False
        delivery.seq = self._next_seq
        if self._store is not None and (delivery.qos > 0 or self._window is not None):   # has_row, inline
            # _persist's common case inline: a row kept for the store to take with the turn's others
            message = delivery.message
            room = self._room - self._row_fixed - len(message.payload) \
                - UTF8_MOST * (len(message.topic_name) + len(message.origin))
            if room >= 0 and not message.properties and not delivery.subscription_ids:
                self._room = room
                self._unwritten.append(delivery)
            else:
                self._persist(delivery)
        self._next_seq += 1
        if full:
            self.discard(self._mem.popleft())
            self.dropped += 1
            log.debug("queue of %s full (%d): dropped its oldest message", self.client_id, limit)
        if self._window is not None and (self._backlog or len(self._mem) >= self._window):
            self._backlog += 1
        else:
            memory = self._mem
            if memory is NOTHING_HELD:
                memory = self._mem = deque()
            memory.append(delivery)
            self._last_loaded = delivery.seq
        return True

    def enqueue_wrote_durable(self, delivery: Delivery) -> bool:
        """True when enqueuing this delivery writes to a disc store (a durable queue has one)."""
        return delivery.qos >= self.durable_from_qos

    def has_row(self, delivery: Delivery) -> bool:
        """Whether this delivery has a row in the store (QoS 1/2; everything in window mode)."""
        return self._store is not None and (delivery.qos > 0 or self._window is not None)

    def pop(self) -> Delivery | None:
        """The next delivery to send, or None."""
        if not self._mem and self._backlog:
            self._refill()
        if not self._mem:
            return None
        return self._mem.pop() if self.limits.lifo else self._mem.popleft()

    def push_front(self, delivery: Delivery) -> None:
        """Put back a delivery that could not be sent yet (kept in its place)."""
        memory = self._memory()
        if self.limits.lifo:
            memory.append(delivery)
        else:
            memory.appendleft(delivery)

    def discard(self, delivery: Delivery) -> None:
        """A delivery left the queue for good (acknowledged, expired, dropped)."""
        if delivery.seq and self.has_row(delivery):
            key = self._prefix + seq_suffix(delivery.seq)
            if self._discarded:
                self._discarded.append(key)
            else:
                self._discarded = [key]
                if self._schedule is None:
                    self.flush()
                else:
                    self._schedule(self)

    def release(self, delivery: Delivery, packet_id: int) -> bool:
        """A QoS 2 delivery got its PUBREC: keep its row, marked with the packet id,
        until PUBCOMP (`complete`), so a restart resends PUBREL, not the message.
        True when that wrote to a disc store (PUBREL waits for the commit)."""
        if not (delivery.seq and self.has_row(delivery)):
            return False
        try:
            self._persist(delivery, packet_id)
        except QueueFull:       # the store is full: a restart would resend the message
            self.discard(delivery)
            return False
        self._released_rows()[packet_id] = delivery.seq
        return self._durable

    def complete(self, packet_id: int) -> None:
        """The PUBCOMP of a released delivery: its row goes."""
        seq = self.released.pop(packet_id, None) if self.released else None
        if seq is not None:
            self.discard(Delivery(None, 2, False, (), seq))

    def flush(self) -> None:
        """Delete the rows of every delivery discarded since the last flush."""
        if self._discarded:
            keys, self._discarded = self._discarded, ()
            self._store.delete_many("queue", keys)

    def clear(self) -> None:
        """Drop everything (clean start, session end)."""
        self._mem = NOTHING_HELD
        self._backlog = 0
        if self.released:
            self.released.clear()
        if self._discarded:
            self._discarded = ()  # the prefix delete covers them
        if self._store is not None:
            self._store.delete_prefix("queue", self._prefix)

    def extract(self, seqs: set[int]) -> list[Delivery]:
        """Take the deliveries with these sequence numbers out of the queue."""
        taken = [d for d in self._mem if d.seq in seqs]
        if taken:
            self._mem = deque(d for d in self._mem if d.seq not in seqs)
        return taken

    def forget(self) -> None:
        """Drop the memory copy only; persisted rows stay for the next owner."""
        self.flush()
        self._mem = NOTHING_HELD
        self._backlog = 0
        if self.released:
            self.released.clear()
        if self._store is not None:
            self._store.invalidate("queue", self._prefix)

    def snapshot(self) -> list[Delivery]:
        """Every delivery held in memory, in order (for takeover hand-over)."""
        return list(self._mem)

    def _memory(self) -> deque[Delivery]:
        if self._mem is NOTHING_HELD:
            self._mem = deque()
        return self._mem

    def _can_evict(self) -> bool:
        if not self.limits.drop_oldest:
            return False
        if not self._mem and self._backlog:
            self._refill()
        return bool(self._mem)

    def take_rows(self, table: str, first_seq: int, entries: list) -> tuple[list, int]:
        """The puts of the rows of the deliveries kept since the store last took
        them (see Store.defer), in order, as the store's pending writes numbered
        from `first_seq` into `table`, with their log entries added to `entries`
        (queue_ops), and the room left of what the store gave."""
        deliveries, self._unwritten = self._unwritten, ()
        room, self._room = self._room, 0
        return queue_ops(self._prefix, deliveries, table, first_seq, entries) if deliveries else [], room

    def _persist(self, delivery: Delivery, packet_id: int | None = None) -> None:
        """Write the delivery's row. A message without properties is kept for the
        store to take in one go with the turn's others (Store.defer) while the
        room it gave lasts; the others, and a released row, are put now."""
        message = delivery.message
        if packet_id is None and not message.properties and not delivery.subscription_ids:
            size = self._row_fixed + len(message.payload) + UTF8_MOST * (len(message.topic_name) + len(message.origin))
            room = self._room - size
            if room < 0:    # the first row of this turn, or no room left: ask the store
                room = self._store.defer(self) - size
                self._unwritten = []
            if room >= 0:
                self._room = room
                self._unwritten.append(delivery)
                return
        if delivery.qos != message.qos or delivery.retain != message.retain or delivery.subscription_ids:
            props = dict(message.properties)
            if delivery.subscription_ids:
                props["subscription_identifier"] = list(delivery.subscription_ids)
            message = replace(message, qos=delivery.qos, retain=delivery.retain, properties=props)
        try:
            self._store.put("queue", self._prefix + seq_suffix(delivery.seq), encode_message(message, packet_id))
        except StorageFullError as exc:  # the store logs the episode; this is per message
            log.debug("refused a message for %s: %s", self.client_id, exc)
            raise QueueFull(str(exc)) from exc

    def _refill(self) -> None:
        """Read the next window of the backlog, from the row after the last one read:
        a page of the store, decoded in one loop (and the next page while every
        row of one was a released QoS 2 row, which stays out of memory)."""
        memory = self._memory()
        while self._backlog > 0 and not memory:
            wanted = min(self._window, self._backlog)
            start = self._prefix + seq_suffix(self._last_loaded + 1)
            rows = list(islice(self._store.scan("queue", self._prefix, start=start), wanted))
            memory.extend(self._deliveries(rows))
            if rows:
                self._last_loaded = queue_seq(rows[-1][0])
            # fewer rows than wanted: the store holds no more, nothing is left behind
            self._backlog = self._backlog - len(rows) if len(rows) == wanted else 0

    def _released_rows(self) -> dict[int, int]:
        """`released`, to add to."""
        if self.released is NOTHING_RELEASED:
            self.released = {}
        return self.released

    def _deliveries(self, rows: list[tuple[bytes, bytes]]) -> list[Delivery]:
        """The deliveries of stored rows, in order: a row sendable as stored becomes
        a StoredDelivery (nothing decoded), the others are decoded as a page; a
        released QoS 2 row is noted in `released` instead."""
        deliveries: list = []
        append = deliveries.append
        decoded_at: list[int] = []      # where the rows to decode go
        to_decode = []
        for row in rows:
            key, data = row
            flags = sendable_flags(data)
            if flags:
                append(StoredDelivery(data, flags & 3, flags & RETAIN_FLAG != 0, queue_seq(key)))
            else:
                decoded_at.append(len(deliveries))
                append(None)
                to_decode.append(row)
        if to_decode:
            for at, (key, _), (message, packet_id) in zip(decoded_at, to_decode, decode_messages(to_decode)):
                deliveries[at] = self._delivery(queue_seq(key), message, packet_id)
            if None in deliveries:
                deliveries = [delivery for delivery in deliveries if delivery is not None]
        return deliveries

    def _delivery(self, seq: int, message: Message, packet_id: int | None) -> Delivery | None:
        """The delivery of a decoded row; None for a released QoS 2 row (noted in released)."""
        if packet_id is not None:
            self._released_rows()[packet_id] = seq
            return None
        if "subscription_identifier" not in message.properties:
            return Delivery(message, message.qos, message.retain, (), seq)
        props = dict(message.properties)
        sub_ids = tuple(props.pop("subscription_identifier"))
        return Delivery(replace(message, properties=props), message.qos, message.retain, sub_ids, seq)
