"""MQTT 5 properties (section 2.2.2): the property table and the property block codec.

`PROPERTIES` lists every property: identifier, snake_case name, data type, the
packet types that may carry it, and the packet types in which it may repeat.
A repeatable property is held as a list (user_property: list of (str, str);
subscription_identifier in PUBLISH: list[int]); any other as a single value
(subscription_identifier in SUBSCRIBE: int). Will properties use `WILL` as
their packet type.

Decoding follows the spec's error classes: an unknown identifier, or one not
valid for the packet, is a Malformed Packet (0x81); a property that appears
twice, or a value the spec forbids (0, or a byte other than 0/1), is a
Protocol Error (0x82); a Topic Alias of 0 is 0x94. Encoding a name that is
unknown or not valid for the packet is a programming error: ValueError.
"""

from dataclasses import dataclass
from typing import Callable

from actormq.errors import ProtocolError
from actormq.transport.codec.packets import PacketType
from actormq.transport.codec.primitives import (
    U16, U32, decode_varint, encode_binary, encode_utf8, encode_utf8_pair, encode_varint,
    malformed, protocol_error, read_binary, read_byte, read_u16, read_u32, read_utf8,
    read_utf8_pair, read_varint,
)
from actormq.transport.codec.reason_codes import ReasonCode

WILL = 0
"""The packet type argument for the will properties inside CONNECT."""

T = PacketType
_ALL = frozenset((T.CONNECT, T.CONNACK, T.PUBLISH, WILL, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP,
                  T.SUBSCRIBE, T.SUBACK, T.UNSUBSCRIBE, T.UNSUBACK, T.DISCONNECT, T.AUTH))
_MESSAGE = frozenset((T.PUBLISH, WILL))
_ACKS = frozenset((T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBACK, T.UNSUBACK))


@dataclass(frozen=True, slots=True)
class PropertyType:
    """A property data type: its reader and its writer."""

    name: str
    read: Callable
    write: Callable


BYTE = PropertyType("byte", read_byte, lambda v: bytes((v,)))
TWO_BYTE_INT = PropertyType("two-byte integer", read_u16, U16.pack)
FOUR_BYTE_INT = PropertyType("four-byte integer", read_u32, U32.pack)
VARINT = PropertyType("variable byte integer", read_varint, encode_varint)
UTF8 = PropertyType("UTF-8 string", read_utf8, encode_utf8)
BINARY = PropertyType("binary data", read_binary, encode_binary)
STRING_PAIR = PropertyType("UTF-8 string pair", read_utf8_pair, encode_utf8_pair)


@dataclass(frozen=True, slots=True)
class Property:
    id: int
    name: str
    type: PropertyType
    packet_types: frozenset
    repeatable_in: frozenset = frozenset()


PROPERTIES = (
    Property(0x01, "payload_format_indicator", BYTE, _MESSAGE),
    Property(0x02, "message_expiry_interval", FOUR_BYTE_INT, _MESSAGE),
    Property(0x03, "content_type", UTF8, _MESSAGE),
    Property(0x08, "response_topic", UTF8, _MESSAGE),
    Property(0x09, "correlation_data", BINARY, _MESSAGE),
    Property(0x0B, "subscription_identifier", VARINT, frozenset((T.PUBLISH, T.SUBSCRIBE)),
             frozenset((T.PUBLISH,))),
    Property(0x11, "session_expiry_interval", FOUR_BYTE_INT,
             frozenset((T.CONNECT, T.CONNACK, T.DISCONNECT))),
    Property(0x12, "assigned_client_identifier", UTF8, frozenset((T.CONNACK,))),
    Property(0x13, "server_keep_alive", TWO_BYTE_INT, frozenset((T.CONNACK,))),
    Property(0x15, "authentication_method", UTF8, frozenset((T.CONNECT, T.CONNACK, T.AUTH))),
    Property(0x16, "authentication_data", BINARY, frozenset((T.CONNECT, T.CONNACK, T.AUTH))),
    Property(0x17, "request_problem_information", BYTE, frozenset((T.CONNECT,))),
    Property(0x18, "will_delay_interval", FOUR_BYTE_INT, frozenset((WILL,))),
    Property(0x19, "request_response_information", BYTE, frozenset((T.CONNECT,))),
    Property(0x1A, "response_information", UTF8, frozenset((T.CONNACK,))),
    Property(0x1C, "server_reference", UTF8, frozenset((T.CONNACK, T.DISCONNECT))),
    Property(0x1F, "reason_string", UTF8, _ACKS | {T.CONNACK, T.DISCONNECT, T.AUTH}),
    Property(0x21, "receive_maximum", TWO_BYTE_INT, frozenset((T.CONNECT, T.CONNACK))),
    Property(0x22, "topic_alias_maximum", TWO_BYTE_INT, frozenset((T.CONNECT, T.CONNACK))),
    Property(0x23, "topic_alias", TWO_BYTE_INT, frozenset((T.PUBLISH,))),
    Property(0x24, "maximum_qos", BYTE, frozenset((T.CONNACK,))),
    Property(0x25, "retain_available", BYTE, frozenset((T.CONNACK,))),
    Property(0x26, "user_property", STRING_PAIR, _ALL, _ALL),
    Property(0x27, "maximum_packet_size", FOUR_BYTE_INT, frozenset((T.CONNECT, T.CONNACK))),
    Property(0x28, "wildcard_subscription_available", BYTE, frozenset((T.CONNACK,))),
    Property(0x29, "subscription_identifier_available", BYTE, frozenset((T.CONNACK,))),
    Property(0x2A, "shared_subscription_available", BYTE, frozenset((T.CONNACK,))),
)

PROPERTY_BY_ID = {prop.id: prop for prop in PROPERTIES}
PROPERTY_BY_NAME = {prop.name: prop for prop in PROPERTIES}

# Values the spec forbids, with the reason code each one earns.
NONZERO = {
    "subscription_identifier": ReasonCode.PROTOCOL_ERROR,
    "receive_maximum": ReasonCode.PROTOCOL_ERROR,
    "maximum_packet_size": ReasonCode.PROTOCOL_ERROR,
    "topic_alias": ReasonCode.TOPIC_ALIAS_INVALID,
}
ZERO_OR_ONE = frozenset(prop.name for prop in PROPERTIES if prop.type is BYTE)

_EMPTY_BLOCK = b"\x00"


def _check_value(name: str, value) -> None:
    if value == 0 and name in NONZERO:
        raise ProtocolError(NONZERO[name], f"{name} of 0")
    if name in ZERO_OR_ONE and value > 1:
        raise protocol_error(f"{name} of {value}, must be 0 or 1")


def decode_properties(data: bytes, pos: int, packet_type: int,
                      end: int | None = None) -> tuple[dict, int]:
    """Read a property block (length prefix included) at `pos`; return (properties, new_pos)."""
    if end is None:
        end = len(data)
    length, pos = decode_varint(data, pos, end)
    stop = pos + length
    if stop > end:
        raise malformed("property length runs past the end of the packet")
    props: dict = {}
    while pos < stop:
        prop = PROPERTY_BY_ID.get(data[pos])
        if prop is None:
            raise malformed(f"unknown property identifier 0x{data[pos]:02X}")
        if packet_type not in prop.packet_types:
            raise malformed(f"{prop.name} is not valid in {_packet_name(packet_type)}")
        value, pos = prop.type.read(data, pos + 1, stop)
        name = prop.name
        _check_value(name, value)
        if packet_type in prop.repeatable_in:
            props.setdefault(name, []).append(value)
        elif name in props:
            raise protocol_error(f"{name} included more than once")
        else:
            props[name] = value
    return props, pos


def encode_properties(props: dict | None, packet_type: int) -> bytes:
    """A property block with its length prefix; `None` values are left out."""
    if not props:
        return _EMPTY_BLOCK
    parts = []
    for name, value in props.items():
        if value is None:
            continue
        prop = PROPERTY_BY_NAME.get(name)
        if prop is None or packet_type not in prop.packet_types:
            raise ValueError(f"property {name!r} is not valid in {_packet_name(packet_type)}")
        ident = bytes((prop.id,))
        write = prop.type.write
        for item in (value if packet_type in prop.repeatable_in else (value,)):
            parts.append(ident)
            parts.append(write(item))
    block = b"".join(parts)
    return encode_varint(len(block)) + block


def _packet_name(packet_type: int) -> str:
    return "will properties" if packet_type == WILL else PacketType(packet_type).name
