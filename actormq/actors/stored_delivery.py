"""StoredDelivery: a delivery read back from a disc_only queue page that goes
out as it was stored. The drain of a disc_only queue reads every message it
sends from LMDB; decoding each row into a Message and encoding that again as
a PUBLISH cost more than the rest of the drain together. A row that is
*sendable as stored* (records.sendable_flags: compact, QoS 1/2, no expiry, no
properties) becomes a StoredDelivery holding the row's bytes, and its PUBLISH
is cut from them (`send_stored`). Its `message` is decoded the first time
something asks for it (a retransmission, a hook, a hand-over, a mountpoint or
topic aliases to apply), so every other user of a Delivery sees one.
"""

from __future__ import annotations

from actormq.actors.messages import Delivery, Message
from actormq.storage.records import decode_message, stored_topic_payload
from actormq.transport.codec import encode_stored_publish

_MESSAGE_SLOT = Delivery.message    # Delivery's own storage of `message`, under the property


class StoredDelivery(Delivery):
    """A QoS 1/2 delivery whose message is still the stored row `record`."""

    __slots__ = ("record",)

    def __init__(self, record: bytes, qos: int, retain: bool, seq: int) -> None:
        self.record = record
        self.qos = qos
        self.retain = retain
        self.subscription_ids = ()
        self.seq = seq

    @property
    def message(self) -> Message:
        try:
            return _MESSAGE_SLOT.__get__(self)
        except AttributeError:
            message = decode_message(self.record)[0]
            _MESSAGE_SLOT.__set__(self, message)
            return message

    @message.setter
    def message(self, message: Message) -> None:
        """A changed message (a deliver hook's): sent from the message from now on."""
        _MESSAGE_SLOT.__set__(self, message)
        self.record = None

    def __reduce__(self):
        return Delivery, (self.message, self.qos, self.retain, self.subscription_ids, self.seq)


def send_stored(conn, delivery: StoredDelivery, packet_id: int) -> bool:
    """conn.send_publish for a StoredDelivery: the PUBLISH cut from the stored
    row where the connection sends the topic as stored (no mountpoint to take
    off, no topic alias to apply); False when it exceeds the client's maximum
    packet size."""
    record = delivery.record
    if record is None or conn.mountpoint or conn.alias_out is not None:
        return conn.send_publish(delivery.message, delivery.qos, delivery.retain, packet_id, False)
    topic, payload = stored_topic_payload(record)
    data = encode_stored_publish(topic, payload, delivery.qos, delivery.retain, False, packet_id,
                                 conn.version)
    if conn.max_packet_out and len(data) > conn.max_packet_out:
        return conn.send_publish(delivery.message, delivery.qos, delivery.retain, packet_id, False)
    conn.send_bytes(data, 1)
    return True
