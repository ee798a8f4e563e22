"""Packet values to bytes: `encode(packet, version)` for every packet and protocol version.

`version` is the protocol level of the connection: 3 (MQTT 3.1), 4 (3.1.1) or
5 (5.0). For 3 and 4 the properties are dropped and reason codes are mapped to
the older return codes or left out where the packet has none (a 3.1.1 PUBACK is
4 bytes). A CONNECT is written in its own `protocol_level`. Packets a version
cannot express (AUTH before 5.0) raise ValueError, as do property names that
are not valid for the packet.

The PUBLISH fast path is `encode_publish(...)`; `encode_stored_publish(...)`
writes the same bytes for a message kept as UTF-8 topic and payload bytes. A broker that sends one message
to many QoS 1/2 subscribers encodes it once with `encode_publish_template(...)`
and calls `template.to_bytes(packet_id, dup)` per subscriber: the template holds
the bytes before the packet identifier (`head`: fixed header and topic name) and
after it (`tail`: properties and payload), so only two bytes change.
"""

from dataclasses import dataclass
from struct import Struct

from actormq.transport.codec.packets import (
    Auth, Connack, Connect, Disconnect, PacketType, Puback, Pubcomp, Publish, Pubrec, Pubrel,
    Suback, Subscribe, Unsuback, Unsubscribe,
)
from actormq.transport.codec.primitives import (
    U16, decode_varint, encode_binary, encode_utf8, encode_varint,
)
from actormq.transport.codec.properties import WILL, encode_properties
from actormq.transport.codec.reason_codes import connack_return_code_v311, suback_code_v311

__all__ = ["encode", "encode_publish", "encode_stored_publish", "encode_publish_template", "PublishTemplate",
           "encode_varint", "decode_varint"]

_NO_PROPS = b"\x00"
_PINGREQ = b"\xc0\x00"
_PINGRESP = b"\xd0\x00"


def _frame(first_byte: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return bytes((first_byte,)) + encode_varint(len(body)) + body


_SHORT_HEAD = Struct(">BBH")  # first byte, a one-byte remaining length, topic length


def _head(first: int, remaining: int, topic_length: int) -> bytes:
    """Fixed header and the topic's length prefix of a PUBLISH."""
    if remaining < 128:
        return _SHORT_HEAD.pack(first, remaining, topic_length)
    return bytes((first,)) + encode_varint(remaining) + U16.pack(topic_length)


def _publish_head(topic: bytes, qos: int, retain: bool, dup: bool, rest_length: int) -> bytes:
    """Fixed header and topic name of a PUBLISH whose remaining bytes after the topic
    (packet identifier, properties, payload) are `rest_length` long."""
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    return _head(first, 2 + len(topic) + rest_length, len(topic)) + topic


def _publish_properties(properties: dict | None, version: int) -> bytes:
    if version != 5:
        return b""
    return encode_properties(properties, PacketType.PUBLISH) if properties else _NO_PROPS


def encode_publish(topic_name: str, payload: bytes, qos: int, retain: bool, dup: bool,
                   packet_id: int | None, properties: dict | None, version: int) -> bytes:
    """One PUBLISH packet; `packet_id` is required for QoS 1/2 and ignored for QoS 0."""
    topic = topic_name.encode("utf-8")
    props = _publish_properties(properties, version)
    remaining = 2 + len(topic) + len(props) + len(payload)
    if qos:
        remaining += 2
        first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    else:
        first = 0x31 if retain else 0x30
    head = _SHORT_HEAD.pack(first, remaining, len(topic)) if remaining < 128 else \
        _head(first, remaining, len(topic))
    if qos:
        return b"".join((head, topic, U16.pack(packet_id), props, payload))
    return b"".join((head, topic, props, payload))


def encode_stored_publish(topic: bytes, payload: bytes, qos: int, retain: bool, dup: bool,
                          packet_id: int, version: int) -> bytes:
    """The QoS 1/2 PUBLISH without properties of a topic name already in UTF-8:
    what `encode_publish` writes for it, minus the encoding of the topic."""
    props = _NO_PROPS if version == 5 else b""
    remaining = 4 + len(topic) + len(props) + len(payload)
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    head = _SHORT_HEAD.pack(first, remaining, len(topic)) if remaining < 128 else \
        _head(first, remaining, len(topic))
    return b"".join((head, topic, U16.pack(packet_id), props, payload))


@dataclass(frozen=True, slots=True)
class PublishTemplate:
    """A PUBLISH encoded once, minus its packet identifier (see the module docstring)."""

    head: bytes
    tail: bytes
    qos: int

    def to_bytes(self, packet_id: int | None = None, dup: bool = False) -> bytes:
        """The packet with this packet identifier (QoS 1/2; ignored for QoS 0)."""
        head = self.head
        if dup and self.qos:
            head = bytes((head[0] | 0x08,)) + head[1:]
        if not self.qos:
            return head + self.tail
        return b"".join((head, U16.pack(packet_id), self.tail))


def encode_publish_template(topic_name: str, payload: bytes, qos: int, retain: bool,
                            properties: dict | None, version: int) -> PublishTemplate:
    """Encode a PUBLISH once for many receivers; see `PublishTemplate.to_bytes`."""
    topic = topic_name.encode("utf-8")
    tail = _publish_properties(properties, version) + payload
    id_length = 2 if qos else 0
    return PublishTemplate(_publish_head(topic, qos, retain, False, id_length + len(tail)),
                           tail, qos)


def _encode_publish(packet: Publish, version: int) -> bytes:
    return encode_publish(packet.topic_name, packet.payload, packet.qos, packet.retain,
                          packet.dup, packet.packet_id, packet.properties, version)


def _connect_flags(packet: Connect) -> int:
    flags = ((0x02 if packet.clean_start else 0)
             | (0x80 if packet.username is not None else 0)
             | (0x40 if packet.password is not None else 0))
    will = packet.will
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    return flags


def _encode_connect(packet: Connect, version: int) -> bytes:
    level = packet.protocol_level
    will = packet.will
    parts = [encode_utf8(packet.protocol_name), bytes((level, _connect_flags(packet))),
             U16.pack(packet.keepalive)]
    if level == 5:
        parts.append(encode_properties(packet.properties, PacketType.CONNECT))
    parts.append(encode_utf8(packet.client_id))
    if will is not None:
        if level == 5:
            parts.append(encode_properties(will.properties, WILL))
        parts.append(encode_utf8(will.topic_name))
        parts.append(encode_binary(will.payload))
    if packet.username is not None:
        parts.append(encode_utf8(packet.username))
    if packet.password is not None:
        parts.append(encode_binary(packet.password))
    return _frame(0x10, *parts)


def _encode_connack(packet: Connack, version: int) -> bytes:
    flags = 0x01 if packet.session_present and version >= 4 else 0x00
    if version == 5:
        return _frame(0x20, bytes((flags, packet.reason_code)),
                      encode_properties(packet.properties, PacketType.CONNACK))
    return bytes((0x20, 0x02, flags, connack_return_code_v311(packet.reason_code)))


_ACK_FIRST_BYTES = {PacketType.PUBACK: 0x40, PacketType.PUBREC: 0x50,
                    PacketType.PUBREL: 0x62, PacketType.PUBCOMP: 0x70}


def _encode_ack(packet: Puback | Pubrec | Pubrel | Pubcomp, version: int) -> bytes:
    """PUBACK, PUBREC, PUBREL, PUBCOMP: reason code and properties only when needed."""
    first = _ACK_FIRST_BYTES[packet.packet_type]
    packet_id = U16.pack(packet.packet_id)
    if version < 5 or (packet.reason_code == 0 and not packet.properties):
        return bytes((first, 2)) + packet_id
    if not packet.properties:
        return bytes((first, 3)) + packet_id + bytes((packet.reason_code,))
    return _frame(first, packet_id, bytes((packet.reason_code,)),
                  encode_properties(packet.properties, packet.packet_type))


def _subscription_options(subscription, version: int) -> bytes:
    if version < 5:
        return bytes((subscription.qos,))
    return bytes((subscription.qos
                  | (0x04 if subscription.no_local else 0)
                  | (0x08 if subscription.retain_as_published else 0)
                  | (subscription.retain_handling << 4),))


def _properties_if_v5(packet, version: int) -> bytes:
    return encode_properties(packet.properties, packet.packet_type) if version == 5 else b""


def _encode_subscribe(packet: Subscribe, version: int) -> bytes:
    parts = [U16.pack(packet.packet_id), _properties_if_v5(packet, version)]
    for subscription in packet.subscriptions:
        parts.append(encode_utf8(subscription.topic_filter))
        parts.append(_subscription_options(subscription, version))
    return _frame(0x82, *parts)


def _encode_suback(packet: Suback, version: int) -> bytes:
    codes = packet.reason_codes if version == 5 else map(suback_code_v311, packet.reason_codes)
    return _frame(0x90, U16.pack(packet.packet_id), _properties_if_v5(packet, version),
                  bytes(codes))


def _encode_unsubscribe(packet: Unsubscribe, version: int) -> bytes:
    return _frame(0xA2, U16.pack(packet.packet_id), _properties_if_v5(packet, version),
                  *map(encode_utf8, packet.topic_filters))


def _encode_unsuback(packet: Unsuback, version: int) -> bytes:
    if version < 5:
        return b"\xb0\x02" + U16.pack(packet.packet_id)
    return _frame(0xB0, U16.pack(packet.packet_id), _properties_if_v5(packet, version),
                  bytes(packet.reason_codes))


def _encode_reason_only(first: int, packet: Disconnect | Auth) -> bytes:
    """DISCONNECT / AUTH in 5.0: empty when the reason code is 0 and there are no properties."""
    if packet.reason_code == 0 and not packet.properties:
        return bytes((first, 0))
    return _frame(first, bytes((packet.reason_code,)),
                  encode_properties(packet.properties, packet.packet_type))


def _encode_disconnect(packet: Disconnect, version: int) -> bytes:
    return _encode_reason_only(0xE0, packet) if version == 5 else b"\xe0\x00"


def _encode_auth(packet: Auth, version: int) -> bytes:
    if version != 5:
        raise ValueError("AUTH exists in MQTT 5.0 only")
    return _encode_reason_only(0xF0, packet)


_ENCODERS = {
    PacketType.CONNECT: _encode_connect,
    PacketType.CONNACK: _encode_connack,
    PacketType.PUBLISH: _encode_publish,
    PacketType.PUBACK: _encode_ack,
    PacketType.PUBREC: _encode_ack,
    PacketType.PUBREL: _encode_ack,
    PacketType.PUBCOMP: _encode_ack,
    PacketType.SUBSCRIBE: _encode_subscribe,
    PacketType.SUBACK: _encode_suback,
    PacketType.UNSUBSCRIBE: _encode_unsubscribe,
    PacketType.UNSUBACK: _encode_unsuback,
    PacketType.PINGREQ: lambda packet, version: _PINGREQ,
    PacketType.PINGRESP: lambda packet, version: _PINGRESP,
    PacketType.DISCONNECT: _encode_disconnect,
    PacketType.AUTH: _encode_auth,
}


def encode(packet, version: int) -> bytes:
    """The wire bytes of `packet` for a connection at protocol level `version`."""
    return _ENCODERS[packet.packet_type](packet, version)
