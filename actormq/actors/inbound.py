"""A Session's inbound PUBLISH flow: the client's message routed, then
acknowledged (PUBACK, or PUBREC then PUBCOMP on PUBREL) at once or after the
store committed it, the client's QoS 2 packet ids, and the server's receive
maximum. A base class of Session.

Takes: PUBLISH (already validated by the Connection) and PUBREL. Sends:
the message to the Broker for routing, the acknowledgements to the Connection;
returns what routing did (`routed.Routed`: the Connection holds its client
back for the congested parties it names).
"""

from __future__ import annotations

import struct
from functools import partial

from actormq.actors import hooked
from actormq.actors.durability import PeersRefused
from actormq.actors.messages import Message
from actormq.actors.routed import NOT_DELIVERED, Routed
from actormq.errors import ProtocolError
from actormq.hooks import DropReason
from actormq.transport.codec import Puback, Pubcomp, Pubrec, ReasonCode

_ACK = struct.Struct("!BBH")


def _ack_packet(data: bytes) -> Puback | Pubrec:
    """The packet of a deferred ack kept as its 4 bytes."""
    return (Puback if data[0] == 0x40 else Pubrec)(int.from_bytes(data[2:4], "big"))


def _send_ack(conn, packet) -> None:
    """A deferred ack: its 4 bytes, or a packet with a reason code."""
    if type(packet) is bytes:
        conn.send_bytes(packet)
    else:
        conn.send_packet(packet)


class AckBatch:
    """The deferred acks of one read of a connection, in order, and the ack ids
    of other workers they wait for (`waits`: a packet's index -> its ids)."""

    __slots__ = ("conn", "packets", "waits")

    def __init__(self, conn) -> None:
        self.conn = conn
        self.packets: list = []
        self.waits: dict | None = None

    def acks(self) -> tuple:
        """Every ack id the batch waits for."""
        waits = self.waits
        return () if waits is None else tuple(ack for acks in waits.values() for ack in acks)


class InboundPublishes:
    """The inbound half of a Session (uses its broker, hooks, conn, version,
    _qos2_in, _deferred_acks and ack_batch)."""

    __slots__ = ()

    def handle_publish(self, packet, message: Message) -> Routed:
        """Route a client's message and acknowledge it (after durability when needed)."""
        qos = packet.qos
        if qos == 2:
            if packet.packet_id in self._qos2_in:
                self._ack(Pubrec(packet.packet_id))
                return NOT_DELIVERED
            self._check_receive_maximum()
        elif qos == 1 and self._deferred_acks and \
                len(self._qos2_in) + self._deferred_acks >= self.broker.settings.receive_maximum:
            self._check_receive_maximum()
        routed = self.broker.publish(message)
        delivered = routed.delivered
        if not delivered and self.hooks.message_dropped is not None:
            hooked.dropped(self.hooks, self.client_id, message, DropReason.NO_SUBSCRIBERS)
        if qos == 0:
            return routed
        reason = 0
        if routed.quota_exceeded:
            if self.version != 5:   # no reason codes: only an unacknowledged message says "not saved"
                raise ProtocolError(ReasonCode.QUOTA_EXCEEDED, "the store is full")
            reason = ReasonCode.QUOTA_EXCEEDED
        elif not delivered and self.version == 5:
            reason = ReasonCode.NO_MATCHING_SUBSCRIBERS
        if qos == 2 and reason < 0x80:
            self.qos2_in_table()[packet.packet_id] = None
        if routed.pending or self._deferred_acks:
            if reason == 0:     # the 4 bytes it will send, rather than a packet to encode then
                batch = self.ack_batch
                if batch is not None and not routed.acks:   # the read's batch is open: join it
                    self._deferred_acks += 1
                    batch.packets.append(_ACK.pack(0x40 if qos == 1 else 0x50, 2, packet.packet_id))
                    return routed
                self._defer_ack(routed, _ACK.pack(0x40 if qos == 1 else 0x50, 2, packet.packet_id))
            else:
                self._defer_ack(routed, Puback(packet.packet_id, reason) if qos == 1
                                else Pubrec(packet.packet_id, reason))
        elif reason == 0 and self.conn is not None:
            # a 4-byte PUBACK/PUBREC is valid in every version when the reason is 0
            self.conn.send_bytes(_ACK.pack(0x40 if qos == 1 else 0x50, 2, packet.packet_id))
        else:
            self._ack(Puback(packet.packet_id, reason) if qos == 1 else Pubrec(packet.packet_id, reason))
        return routed

    def accept_unrouted(self, packet) -> None:
        """Acknowledge a PUBLISH a plugin dropped, as if it had been routed."""
        if packet.qos == 1:
            self._ack(Puback(packet.packet_id))
        elif packet.qos == 2:
            self.qos2_in_table()[packet.packet_id] = None
            self._ack(Pubrec(packet.packet_id))

    def _check_receive_maximum(self) -> None:
        if len(self._qos2_in) + self._deferred_acks >= self.broker.settings.receive_maximum:
            raise ProtocolError(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED, "receive maximum exceeded")

    def _ack(self, packet) -> None:
        if self.conn is not None:
            self.conn.send_packet(packet)

    def _defer_ack(self, routed: Routed, packet) -> None:
        """Send the ack (a packet, or the bytes of one with reason 0) once the
        store has committed what this message wrote.
        The acks of one read wait together (see AckBatch): one durability wait
        and one callback per read, not per message, also for messages that
        wait for other workers (`routed.acks`: the batch waits for all their
        answers). Acks stay in order because durability callbacks run in the
        order they were asked for. When a commit failed, the acks of what it
        held say so (see _refuse_deferred)."""
        self._deferred_acks += 1
        batch = self.ack_batch
        if batch is None:
            batch = self.ack_batch = AckBatch(self.conn)
            # the end of the read releases it; this covers a publish routed
            # outside a read (an asynchronous hook's answer)
            self.broker.loop.call_soon(self.release_acks)
        if routed.acks:
            if batch.waits is None:
                batch.waits = {}
            batch.waits[len(batch.packets)] = routed.acks
        batch.packets.append(packet)

    def release_acks(self) -> None:
        """Wait for the commit of what the batch's messages wrote, then ack them."""
        batch = self.ack_batch
        if batch is not None:
            self.ack_batch = None
            conn, packets = batch.conn, batch.packets
            self.broker.when_durable(batch.acks(), partial(self._send_deferred, conn, packets),
                                     partial(self._refuse_deferred, conn, packets, batch.waits))

    def _refuse_deferred(self, conn, packets: list, waits: dict | None, error) -> None:
        """A store could not save what messages wrote: their acks say so, MQTT 5
        with QUOTA_EXCEEDED; 3.1.1 has no reason codes, so the connection is
        closed without their acks and the client sends them again. When only
        other workers refused (`PeersRefused`), the messages whose ack ids they
        refused (`waits`) are the refused ones; the others are acknowledged."""
        if conn is not self.conn:
            return
        self._deferred_acks -= len(packets)
        if isinstance(error, PeersRefused) and waits:
            refused_ids = set(error.acks)
            refused = {index for index, acks in waits.items() if not refused_ids.isdisjoint(acks)}
        else:
            refused = range(len(packets))
        packets = [_ack_packet(packet) if index in refused and type(packet) is bytes else packet
                   for index, packet in enumerate(packets)]
        for index in refused:
            if isinstance(packets[index], Pubrec):
                self._qos2_in.pop(packets[index].packet_id, None)    # its resend is routed again
        for index, packet in enumerate(packets):
            if index not in refused:
                _send_ack(conn, packet)
            elif self.version == 5:
                conn.send_packet(type(packet)(packet.packet_id, ReasonCode.QUOTA_EXCEEDED))
            else:
                conn.disconnect(ReasonCode.QUOTA_EXCEEDED, "the store could not save a message")
                return
        conn.flush()

    def _send_deferred(self, conn, packets: list) -> None:
        if conn is not self.conn:
            return
        self._deferred_acks -= len(packets)
        try:
            acks = b"".join(packets)    # the common case: 4 bytes each (reason 0), one write
        except TypeError:               # a packet with a reason code among them
            pass
        else:
            conn.send_acks(acks)
            return
        for packet in packets:
            _send_ack(conn, packet)
        conn.flush()

    def handle_pubrel(self, packet) -> None:
        if packet.packet_id in self._qos2_in:
            self._qos2_in.pop(packet.packet_id, None)
            reason = 0
        else:
            reason = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
        self._ack(Pubcomp(packet.packet_id, reason if self.version == 5 else 0))
