"""The Session: one per client id. Owns the will, the packet-id space, the
in-flight QoS1/2 state of what it sends, the session expiry, and the
session's Queue; its subscriptions (`subscriptions.py`) and the client's
PUBLISH flow with its acknowledgements (`inbound.py`) are in its base classes.

Takes: packets from its Connection (publish, acks, subscribe, unsubscribe,
disconnect), deliveries from the Router, attach/detach of a Connection.
Sends: packets to its Connection, messages to the Broker for routing,
subscription changes to the Router, records to the session store.
"""

from __future__ import annotations

import logging
import time

from actormq.actors import hooked_deliver
from actormq.actors.channel import will_delay
from actormq.actors.flow import Valve
from actormq.actors.inbound import InboundPublishes
from actormq.actors.messages import EMPTY_PROPS, Delivery, Message, SubOptions
from actormq.actors.queue import Queue, QueueFull
from actormq.actors.routed import QUEUE_FULL, WROTE_DURABLE, Routed, congestion
from actormq.actors.stored_delivery import StoredDelivery, send_stored
from actormq.actors.subscriptions import Subscriptions
from actormq.storage.records import SessionRecord, encode_session, session_key
from actormq.transport.codec import Pubrel, ReasonCode, encode_publish
from actormq.transport.topics import parse_shared

log = logging.getLogger("actormq.session")

FORWARDED_PROPERTIES = ("payload_format_indicator", "content_type", "response_topic",
                        "correlation_data", "user_property")

# The table every session holds until it first adds to it (subscriptions,
# packet ids in flight): an idle client costs no dicts of its own. It is read,
# popped from and cleared like the session's own; a session adds to a table
# only after `owned` gave it one.
NONE_YET: dict = {}


class Session(InboundPublishes, Subscriptions):
    """State of one client id, whether or not a connection is attached (its
    inbound PUBLISH flow and its subscriptions are in the two base classes)."""

    # Slots: a connected client costs its attributes, and no instance dict or
    # weak reference slot (a `__dict__` slot costs 24 bytes per instance even unused).
    __slots__ = ("broker", "hooks", "client_id", "version", "max_inflight", "queue", "expiry_interval",
                 "subscriptions", "conn", "mountpoint", "online", "will", "disconnected_at",
                 "receive_maximum", "_inflight", "_awaiting_pubcomp", "_qos2_in", "_next_packet_id",
                 "_expiry_timer", "_will_timer", "_pending_will", "_deferred_acks", "drain_due", "_valve",
                 "deliveries_held", "ack_batch")
    idle = False    # see idle_session: a clean client's session before it uses one

    def __init__(self, broker, client_id: str, protocol_level: int, queue: Queue,
                 expiry_interval: int | None) -> None:
        self.broker = broker
        self.hooks = broker.hooks
        self.client_id = client_id
        self.version = protocol_level
        self.max_inflight = broker.settings.max_inflight
        self.queue = queue
        self.expiry_interval = expiry_interval      # None = never expires
        self.subscriptions: dict[str, SubOptions] = NONE_YET    # its own from the first one on
        self.conn = None
        self.mountpoint = ""                        # its last connection's, kept while offline
        self.online = False
        self.will = None
        self.disconnected_at: float | None = None
        self.receive_maximum = 65535                # the client's, for our sends
        self._inflight: dict[int, Delivery] = NONE_YET  # sent QoS1/2 awaiting PUBACK/PUBREC
        # packet id sets as dicts (keys only): an empty dict is a quarter of an empty set
        self._awaiting_pubcomp: dict[int, None] = NONE_YET  # QoS2 after PUBREC
        self._qos2_in: dict[int, None] = NONE_YET           # received QoS2 awaiting PUBREL
        self._next_packet_id = 1
        self._expiry_timer = None
        self._will_timer = None
        self._pending_will = None
        self._deferred_acks = 0
        self.ack_batch = None       # deferred acks of the read being handled (inbound.AckBatch)
        self.drain_due = False      # acks made room in the window: drain once the read is handled
        self._valve = None                          # publishers held back by us (flow.Valve)
        self.deliveries_held = None     # deliveries waiting behind an asynchronous deliver hook

    @property
    def persistent(self) -> bool:
        return self.expiry_interval is None or self.expiry_interval > 0

    def use_limits(self, queue_limits, max_inflight: int) -> None:
        """Limits a plugin set for this client at CONNECT (VerneMQ's register modifiers)."""
        self.max_inflight = max_inflight
        self.own_queue().limits = queue_limits

    # -- attach / detach -------------------------------------------------------

    def attach(self, conn, session_present: bool) -> None:
        """A connection takes this session over: resend what is in flight, then drain."""
        self._cancel_timers()
        self.conn = conn
        self.mountpoint = conn.mountpoint
        self.online = True
        self.queue.online = True        # the idle queue's is read by nobody
        self.disconnected_at = None
        self.version = conn.version
        self.receive_maximum = conn.client_receive_maximum
        self._deferred_acks = 0
        if session_present:
            self._resend_inflight()
        self.store_record()
        self.drain()

    def detach(self, publish_will: bool) -> None:
        """The connection went away: keep the session (and its will) per expiry."""
        self.conn = None
        self.online = False
        self.queue.online = False        # the idle queue's is read by nobody
        if self._valve is not None:
            self._valve.drained()
        self.disconnected_at = time.time()
        will, self.will = self.will, None
        if will is not None and publish_will:
            self._schedule_will(will)
        if not self.persistent:
            self.broker.end_session(self)
            return
        self.store_record()
        if self.expiry_interval is not None:
            self.expire_in(self.expiry_interval)

    def reopened(self, expiry_interval: int | None, will) -> None:
        """A CONNECT resumes this session: the expiry and will are the new connection's."""
        self.expiry_interval = expiry_interval
        self.will = will

    def client_disconnected(self, decision) -> None:
        """The client's DISCONNECT (a channel.Disconnected): its session expiry, and
        its will dropped unless it asked to keep it."""
        if decision.expiry_changed:
            self.expiry_interval = decision.expiry
        if not decision.keep_will:
            self.will = None

    def expire_in(self, seconds: float) -> None:
        """End this (offline) session after seconds, unless a connection comes first."""
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self._expiry_timer = self.broker.loop.call_later(seconds, self.broker.end_session, self,
                                                         "expired")

    def own_queue(self) -> Queue:
        """The session's queue, its own from now on (until its first message: the broker's idle one)."""
        if self.queue is self.broker.idle_queue:
            self.queue = self.broker.own_queue(self.client_id, self.online)
        return self.queue

    def replace_queue(self, queue: Queue) -> Queue:
        """Keep messages in queue from now on (a session that became persistent);
        the old queue is returned for its messages to be moved over."""
        old, self.queue = self.queue, queue
        return old

    def end(self) -> None:
        """The session is over (expired, clean start, or not persistent)."""
        self._cancel_timers(keep_will=True)
        for topic_filter, opts in self.subscriptions.items():
            _group, real_filter = parse_shared(topic_filter)
            self.broker.router.unsubscribe(self.client_id, real_filter, opts.share_group)
        self.subscriptions.clear()
        self.queue.clear()
        self._inflight.clear()
        if self.broker.stores is not None and self.queue.persistent:
            self.broker.stores.session.delete("session", session_key(self.client_id))

    def _schedule_will(self, will) -> None:
        delay = will_delay(will, self.version, self.expiry_interval)
        if delay <= 0:
            self.broker.publish_will(self.client_id, will)
        else:
            self._pending_will = will
            self._will_timer = self.broker.loop.call_later(delay, self._fire_will, will)

    def _fire_will(self, will) -> None:
        self._will_timer = None
        self._pending_will = None
        if not self.online:
            self.broker.publish_will(self.client_id, will)

    def _cancel_timers(self, keep_will: bool = False) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        if self._will_timer is not None:
            self._will_timer.cancel()
            will, self._pending_will = self._pending_will, None
            self._will_timer = None
            if keep_will and will is not None:   # the session ends before the delay
                self._fire_will(will)

    def store_record(self) -> None:
        stores = self.broker.stores
        if stores is None or not self.persistent or not self.queue.persistent:
            return
        record = SessionRecord(
            client_id=self.client_id, protocol_level=self.version,
            expiry_interval=self.expiry_interval,
            subscriptions={f: o.as_record() for f, o in self.subscriptions.items()},
            connected=self.online, disconnected_at=self.disconnected_at, updated_at=time.time())
        stores.session.put("session", session_key(self.client_id), encode_session(record))

    # -- outbound acks -----------------------------------------------------------

    def handle_puback(self, packet) -> None:
        delivery = self._inflight.pop(packet.packet_id, None)
        if delivery is not None:
            self.queue.discard(delivery)
            self.drain_due = True
            if self.hooks.message_acked is not None:
                self.hooks.message_acked.notify(self.client_id, delivery.message)

    def handle_pubrec(self, packet) -> None:
        delivery = self._inflight.pop(packet.packet_id, None)
        if delivery is None:
            if self.version == 5:
                self._ack(Pubrel(packet.packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND))
            return
        if self.hooks.message_acked is not None:
            self.hooks.message_acked.notify(self.client_id, delivery.message)
        if packet.reason_code >= 0x80:       # the receiver refused it: done
            self.queue.discard(delivery)
            self.drain()
            return
        packet_id = packet.packet_id
        self.awaiting_pubcomp_table()[packet_id] = None
        if not self.queue.release(delivery, packet_id):
            self._ack(Pubrel(packet_id))
            return
        conn, loop = self.conn, self.broker.loop
        self.broker.stores.queue.when_durable(
            lambda: loop.call_soon_threadsafe(self._send_pubrel, conn, packet_id))

    def _send_pubrel(self, conn, packet_id: int) -> None:
        if conn is self.conn and packet_id in self._awaiting_pubcomp:
            conn.send_packet(Pubrel(packet_id))

    def handle_pubcomp(self, packet) -> None:
        if packet.packet_id in self._awaiting_pubcomp:
            del self._awaiting_pubcomp[packet.packet_id]
            self.queue.complete(packet.packet_id)
            self.drain_due = True

    def take_released(self) -> None:
        """After the queue was loaded: its released QoS 2 rows await PUBCOMP."""
        if self.queue.released:
            self.awaiting_pubcomp_table().update(dict.fromkeys(self.queue.released))

    def inflight_count(self) -> int:
        return len(self._inflight) + len(self._awaiting_pubcomp)

    # -- delivery to the client ----------------------------------------------------

    def deliver(self, message: Message, qos: int, retain: bool, sub_ids: tuple,
                encoded: dict) -> Routed | None:
        """Called by the Router for every message this session subscribed to.
        Returns None, or a note for the publisher (see routed): the message
        was written to a disc store, the queue was full, or this session is
        congested and holds the publisher back."""
        chain = self.hooks.message_deliver
        if chain is not None:
            if self.deliveries_held is not None:
                if self.queue.persistent:
                    return hooked_deliver.hold_queued_next(self, message, qos, retain, sub_ids)
                self.deliveries_held.append((message, qos, retain, sub_ids))
                return None
            folded = chain.fold(self.client_id, message)
            if folded is not message:   # changed (or dropped): not the shared encoded bytes
                if type(folded) is not Message:
                    return hooked_deliver.not_delivered(self, message, folded, (qos, retain, sub_ids))
                message, encoded = folded, {}
        return self.deliver_folded(message, qos, retain, sub_ids, encoded)

    def deliver_folded(self, message: Message, qos: int, retain: bool, sub_ids: tuple,
                       encoded: dict) -> Routed | None:
        """Deliver what the ``message.deliver`` hooks made of a message (see `deliver`)."""
        conn = self.conn
        if conn is not None and not self.queue and conn.writable:
            if qos == 0:
                self._send_qos0(conn, message, retain, sub_ids, encoded)
                return None
            if not self.queue.persistent and \
                    len(self._inflight) + len(self._awaiting_pubcomp) < self._window:
                self._send_tracked(conn, Delivery(message, qos, retain, sub_ids))
                return None
        elif conn is None and not self.persistent:
            return None
        return self._enqueue(conn, Delivery(message, qos, retain, sub_ids))

    def enqueue_held(self, delivery: Delivery) -> Routed | None:
        """Queue a delivery a deliver hook holds (stored as any; the drain waits for it)."""
        return self._enqueue(self.conn, delivery)

    def _enqueue(self, conn, delivery: Delivery) -> Routed | None:
        queue = self.queue if self.queue is not self.broker.idle_queue else self.own_queue()
        dropped = queue.dropped
        message = delivery.message
        note = WROTE_DURABLE if delivery.qos >= queue.durable_from_qos else None   # enqueue_wrote_durable, inline
        try:
            if queue.enqueue(delivery) and conn is None and self.hooks.message_offline is not None:
                self.hooks.message_offline.notify(self.client_id, message)
        except QueueFull:
            self.broker.drops.count(self.client_id, message, "queue_full")
            return QUEUE_FULL
        if queue.dropped != dropped:
            self.broker.drops.count(self.client_id, message, self._full_reason)
        if conn is not None:
            self.drain()
            if len(queue) >= self.broker.settings.backpressure_high and not self.overrun:
                return congestion((self,)) if note is None else Routed(durable=True, congested=(self,))
        return note

    def _send_qos0(self, conn, message: Message, retain: bool, sub_ids: tuple, encoded: dict) -> None:
        """QoS 0: encoded once per message for every subscriber that gets the same bytes."""
        if message.expires_at is not None:
            if message.expired(time.time()):
                return
            conn.send_publish(message, 0, retain, None, False, sub_ids)
            return
        if sub_ids or conn.alias_out is not None or conn.mountpoint:
            conn.send_publish(message, 0, retain, None, False, sub_ids)
            return
        key = (self.version, retain)
        data = encoded.get(key)
        if data is None:
            data = encoded[key] = encode_publish(
                message.topic_name, message.payload, 0, retain, False, None,
                message.properties if self.version == 5 else None, self.version)
        conn.send_bytes(data, 1)

    @property
    def _full_reason(self) -> str:
        """Why a full queue dropped a message: after a hold timed out, or plainly full."""
        return "hold_timeout" if self.overrun else "queue_full"

    @property
    def _window(self) -> int:
        return min(self.receive_maximum, self.max_inflight)

    def drain(self) -> None:
        """Send queued deliveries while the in-flight window has room."""
        self.drain_due = False
        conn = self.conn
        queue = self.queue
        if conn is None or not queue or self.deliveries_held is not None:
            return
        room = self._window - len(self._inflight) - len(self._awaiting_pubcomp)
        now = time.time()
        pop = queue.pop
        while room > 0 and conn.writable:
            delivery = pop()
            if delivery is None:
                break
            message = delivery.message if type(delivery) is not StoredDelivery else None  # QoS 1/2, no expiry
            if message is not None and message.expires_at is not None and message.expired(now):
                queue.discard(delivery)
                self.broker.drops.count(self.client_id, message, "expired")
            elif delivery.qos == 0:
                conn.send_publish(message, 0, delivery.retain, None, False, delivery.subscription_ids)
                queue.discard(delivery)
            elif self._send_tracked(conn, delivery):
                room -= 1
            else:
                queue.push_front(delivery)
                break
        valve = self._valve
        if valve is not None and (valve.publishers or valve.overrun) and \
                len(queue) <= self.broker.settings.backpressure_low:
            valve.drained()

    # -- backpressure ------------------------------------------------------------------

    def block(self, publisher) -> None:
        """Hold back a publisher whose messages fill this online session's queue
        faster than its client takes them (see flow.Valve: for at most
        `queue.max_publisher_hold`, then the queue's limit and drop policy decide)."""
        if publisher is self.conn:
            return
        valve = self._valve
        if valve is None:
            settings = self.broker.settings
            valve = self._valve = Valve(self.broker.loop, settings.max_publisher_hold)
        valve.block(publisher)

    @property
    def overrun(self) -> bool:
        return self._valve is not None and self._valve.overrun

    def _send_tracked(self, conn, delivery: Delivery) -> bool:
        """Send a QoS 1/2 delivery under a new packet id; False when no id is free."""
        packet_id = self._allocate_packet_id()
        if packet_id is None:
            return False
        inflight = self._inflight
        if inflight is NONE_YET:
            self._inflight = inflight = {}
        inflight[packet_id] = delivery
        if not (send_stored(conn, delivery, packet_id) if type(delivery) is StoredDelivery else conn.send_publish(
                delivery.message, delivery.qos, delivery.retain, packet_id, False, delivery.subscription_ids)):
            # too large for the client: discard as if delivered [MQTT-3.1.2-25]
            del inflight[packet_id]
            self.queue.discard(delivery)
        return True

    def _resend_inflight(self) -> None:
        conn = self.conn
        for packet_id, delivery in list(self._inflight.items()):
            conn.send_publish(delivery.message, delivery.qos, delivery.retain, packet_id, True,
                              delivery.subscription_ids)
        for packet_id in self._awaiting_pubcomp:
            conn.send_packet(Pubrel(packet_id))

    def _allocate_packet_id(self) -> int | None:
        busy = self._inflight
        pubcomp = self._awaiting_pubcomp
        for _ in range(65535):
            packet_id = self._next_packet_id
            self._next_packet_id = packet_id + 1 if packet_id < 65535 else 1
            if packet_id not in busy and packet_id not in pubcomp:
                return packet_id
        return None

    # -- takeover hand-over ----------------------------------------------------------

    def inflight_items(self) -> list[tuple[int, Delivery]]:
        return list(self._inflight.items())

    @property
    def next_packet_id(self) -> int:
        return self._next_packet_id

    @property
    def qos2_in(self):
        return self._qos2_in.keys()

    @property
    def awaiting_pubcomp(self):
        return self._awaiting_pubcomp.keys()

    def awaiting_pubcomp_table(self) -> dict[int, None]:
        """The QoS 2 packet ids after PUBREC, to add to."""
        if self._awaiting_pubcomp is NONE_YET:
            self._awaiting_pubcomp = {}
        return self._awaiting_pubcomp

    def qos2_in_table(self) -> dict[int, None]:
        """The received QoS 2 packet ids awaiting PUBREL, to add to."""
        if self._qos2_in is NONE_YET:
            self._qos2_in = {}
        return self._qos2_in

    def subscriptions_table(self) -> dict[str, SubOptions]:
        """The subscriptions, to add to."""
        if self.subscriptions is NONE_YET:
            self.subscriptions = {}
        return self.subscriptions

    def restore_inflight(self, inflight: dict[int, Delivery], next_packet_id: int,
                         qos2_in, awaiting_pubcomp) -> None:
        """Take the in-flight state handed over by the session's previous owner."""
        self._inflight = dict(inflight)
        self._next_packet_id = next_packet_id
        self._qos2_in = dict.fromkeys(qos2_in)
        self._awaiting_pubcomp = dict.fromkeys(awaiting_pubcomp)

    def release(self) -> None:
        """This worker gives the session up (handed over): forget it without
        touching what is persisted. Its routes stay: the takeover's forwarder
        owns them until every worker routes to the new owner."""
        self._cancel_timers()
        self.subscriptions.clear()
        self.queue.forget()


def message_from_publish(packet, origin: str, now: float) -> Message:
    """The routed Message for a client's PUBLISH (aliases already resolved)."""
    props = packet.properties
    expires_at = None
    forwarded = EMPTY_PROPS
    if props:
        forwarded = {}
        for name in FORWARDED_PROPERTIES:
            if name in props:
                forwarded[name] = props[name]
        interval = props.get("message_expiry_interval")
        if interval is not None:
            expires_at = now + interval
    return Message(packet.topic_name, packet.payload, packet.qos, packet.retain, forwarded,
                   expires_at, now, origin)

