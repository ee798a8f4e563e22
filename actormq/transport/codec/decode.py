"""Bytes to packet values: `StreamDecoder` for a connection's byte stream and
`decode_packet` for one complete packet.

Everything a pure decoder can check from the MQTT 3.1, 3.1.1 and 5.0 specs is
checked here and raised as `ProtocolError(reason_code, detail)`: reserved flag
bits, QoS 3, DUP on QoS 0, packet identifier 0, empty SUBSCRIBE / UNSUBSCRIBE,
subscription option bits, CONNECT flag rules, protocol name and level, UTF-8
rules, wildcards in topic names, lengths that do not add up. What depends on
the broker's state or configuration (who may send which packet when, topic
aliases beyond the maximum, topic filter syntax, client id rules) is left to
the broker. Packets only a server sends (CONNACK, SUBACK...) decode as well.

PUBLISH, PUBACK and PINGREQ take a short path through `StreamDecoder.feed`.
"""

from actormq.errors import ProtocolError
from actormq.transport.codec.packets import (
    Auth, Connack, Connect, Disconnect, PacketType, Pingreq, Pingresp, Puback, Pubcomp, Publish,
    Pubrec, Pubrel, Suback, Subscribe, Subscription, Unsuback, Unsubscribe, Will,
)
from actormq.transport.codec.primitives import (
    decode_utf8, malformed, protocol_error, read_binary, read_utf8,
)
from actormq.transport.codec.properties import WILL, decode_properties
from actormq.transport.codec.reason_codes import REASON_CODE_FROM_CONNACK_V311, ReasonCode

MAX_PACKET_SIZE = 268_435_460
"""The largest packet MQTT can frame: 1 + 4 length bytes + 268,435,455."""

PROTOCOLS = {("MQIsdp", 3), ("MQTT", 4), ("MQTT", 5)}
"""The (protocol name, protocol level) pairs a CONNECT may carry."""

_PINGREQ = Pingreq()
_PINGRESP = Pingresp()
_SUBACK_V311_CODES = frozenset((0, 1, 2, 0x80))

# Required low nibble of the first byte for every packet type but PUBLISH [MQTT-2.2.2-2].
_FIXED_FLAGS = (None, 0, 0, None, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0)


def _topic_name_invalid(detail: str) -> ProtocolError:
    return ProtocolError(ReasonCode.TOPIC_NAME_INVALID, detail)


def _expect_end(pos: int, end: int, what: str) -> None:
    if pos != end:
        raise malformed(f"{end - pos} unexpected bytes at the end of {what}")


def _packet_id(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 2 > end:
        raise malformed("truncated packet identifier")
    packet_id = (data[pos] << 8) | data[pos + 1]
    if not packet_id:
        raise _zero_packet_id()
    return packet_id, pos + 2


def _zero_packet_id() -> ProtocolError:
    return malformed("packet identifier 0 [MQTT-2.2.1-3]")


NO_PROPERTIES: dict = {}    # of every packet without properties (read only): a CONNECT kept holds no dict


def _properties(data: bytes, pos: int, end: int, packet_type: int,
                version: int) -> tuple[dict, int]:
    if version != 5:
        return NO_PROPERTIES, pos
    if pos < end and data[pos] == 0:
        return NO_PROPERTIES, pos + 1
    return decode_properties(data, pos, packet_type, end)


def _new_publish(topic_name, payload, qos, retain, dup, packet_id, properties) -> Publish:
    """Publish(...) for the hot path: sets the slots directly, skipping the frozen
    dataclass __init__ (twice as fast; the instance is identical)."""
    packet = _new_object(Publish)
    _set_topic_name(packet, topic_name)
    _set_payload(packet, payload)
    _set_qos(packet, qos)
    _set_retain(packet, retain)
    _set_dup(packet, dup)
    _set_packet_id(packet, packet_id)
    _set_properties(packet, properties)
    return packet


_new_object = object.__new__
(_set_topic_name, _set_payload, _set_qos, _set_retain, _set_dup, _set_packet_id,
 _set_properties) = (getattr(Publish, name).__set__ for name in Publish.__slots__)
_set_ack_id, _set_ack_reason, _set_ack_properties = (getattr(Puback, name).__set__
                                                     for name in Puback.__slots__)


def _new_puback(packet_id: int) -> Puback:
    """Puback(packet_id) for the hot path, built as _new_publish builds a Publish."""
    packet = _new_object(Puback)
    _set_ack_id(packet, packet_id)
    _set_ack_reason(packet, 0)
    _set_ack_properties(packet, {})
    return packet


def _decode_publish(first: int, data: bytes, start: int, end: int, version: int) -> Publish:
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
    dup = first & 0x08
    if dup and not qos:
        raise malformed("DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]")
    if end - start < 2:
        raise malformed("truncated topic name")
    pos = start + 2 + ((data[start] << 8) | data[start + 1])
    if pos > end:
        raise malformed("topic name runs past the end of the packet")
    topic_name = decode_utf8(data[start + 2:pos])
    if "+" in topic_name or "#" in topic_name:
        raise _topic_name_invalid("wildcard in a PUBLISH topic name [MQTT-3.3.2-2]")
    packet_id = None
    if qos:
        packet_id, pos = _packet_id(data, pos, end)
    if version != 5:
        props = {}
    elif pos < end and data[pos] == 0:
        props = {}
        pos += 1
    else:
        props, pos = decode_properties(data, pos, PacketType.PUBLISH, end)
    if not topic_name and "topic_alias" not in props:
        raise _topic_name_invalid("empty topic name without a topic alias [MQTT-4.7.3-1]")
    return _new_publish(topic_name, data[pos:end], qos, bool(first & 0x01), bool(dup),
                        packet_id, props)


def _connect_header(data: bytes, start: int, end: int) -> tuple[int, int, int, int]:
    """Protocol name and level, connect flags, keep alive: (level, flags, keepalive, pos)."""
    name, pos = read_utf8(data, start, end)
    if pos + 4 > end:
        raise malformed("truncated CONNECT variable header")
    level, flags = data[pos], data[pos + 1]
    if (name, level) not in PROTOCOLS:
        raise ProtocolError(ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
                            f"unsupported protocol {name!r} level {level} [MQTT-3.1.2-2]")
    if flags & 0x01:
        raise malformed("CONNECT reserved flag set [MQTT-3.1.2-3]")
    will_qos = (flags >> 3) & 0x03
    if will_qos == 3:
        raise malformed("will QoS 3 [MQTT-3.1.2-14]")
    if not flags & 0x04 and flags & 0x38:
        raise malformed("will QoS or will retain without the will flag [MQTT-3.1.2-13/15]")
    if level < 5 and flags & 0x40 and not flags & 0x80:
        raise malformed("password flag without user name flag [MQTT-3.1.2-22]")
    return level, flags, (data[pos + 2] << 8) | data[pos + 3], pos + 4


def _decode_will(flags: int, data: bytes, pos: int, end: int, level: int) -> tuple[Will, int]:
    props, pos = _properties(data, pos, end, WILL, level)
    topic_name, pos = read_utf8(data, pos, end)
    if not topic_name or "+" in topic_name or "#" in topic_name:
        raise _topic_name_invalid(f"will topic {topic_name!r} is not a valid topic name")
    payload, pos = read_binary(data, pos, end)
    return Will(topic_name, payload, (flags >> 3) & 0x03, bool(flags & 0x20), props), pos


def _decode_connect(first: int, data: bytes, start: int, end: int, version: int) -> Connect:
    level, flags, keepalive, pos = _connect_header(data, start, end)
    props, pos = _properties(data, pos, end, PacketType.CONNECT, level)
    client_id, pos = read_utf8(data, pos, end)
    will = username = password = None
    if flags & 0x04:
        will, pos = _decode_will(flags, data, pos, end, level)
    if flags & 0x80:
        username, pos = read_utf8(data, pos, end)
    if flags & 0x40:
        password, pos = read_binary(data, pos, end)
    _expect_end(pos, end, "CONNECT")
    name = "MQIsdp" if level == 3 else "MQTT"
    return Connect(client_id, level, name, bool(flags & 0x02), keepalive, will, username,
                   password, props)


def _decode_connack(first: int, data: bytes, start: int, end: int, version: int) -> Connack:
    if end - start < 2:
        raise malformed("truncated CONNACK")
    flags, code = data[start], data[start + 1]
    if flags & 0xFE and version != 3:
        raise malformed("CONNACK reserved acknowledge flags set")
    if version != 5:
        if code not in REASON_CODE_FROM_CONNACK_V311:
            raise malformed(f"reserved CONNACK return code {code}")
        code = REASON_CODE_FROM_CONNACK_V311[code]
    props, pos = _properties(data, start + 2, end, PacketType.CONNACK, version)
    _expect_end(pos, end, "CONNACK")
    session_present = bool(flags & 0x01) and version != 3  # 3.1 has no session present flag
    return Connack(session_present, int(code), props)


_ACK_CLASSES = {PacketType.PUBACK: Puback, PacketType.PUBREC: Pubrec,
                PacketType.PUBREL: Pubrel, PacketType.PUBCOMP: Pubcomp}


def _decode_ack(first: int, data: bytes, start: int, end: int, version: int):
    """PUBACK, PUBREC, PUBREL, PUBCOMP; in 5.0 reason code and properties may be omitted."""
    packet_type = first >> 4
    packet_id, pos = _packet_id(data, start, end)
    code, props = 0, {}
    if version == 5 and pos < end:
        code = data[pos]
        pos += 1
        if pos < end:
            props, pos = decode_properties(data, pos, packet_type, end)
    _expect_end(pos, end, PacketType(packet_type).name)
    return _ACK_CLASSES[packet_type](packet_id, code, props)


def _subscription(topic_filter: str, options: int, version: int) -> Subscription:
    qos = options & 0x03
    if options & (0xC0 if version == 5 else 0xFC):
        raise malformed("reserved subscription option bits set [MQTT-3-8.3-4] [MQTT-3.8.3-5]")
    if qos == 3:
        raise malformed("subscription QoS 3 [MQTT-3-8.3-4]")
    retain_handling = (options >> 4) & 0x03
    if retain_handling == 3:
        raise protocol_error("retain handling 3")
    return Subscription(topic_filter, qos, bool(options & 0x04), bool(options & 0x08),
                        retain_handling)


def _decode_subscribe(first: int, data: bytes, start: int, end: int, version: int) -> Subscribe:
    packet_id, pos = _packet_id(data, start, end)
    props, pos = _properties(data, pos, end, PacketType.SUBSCRIBE, version)
    subscriptions = []
    while pos < end:
        topic_filter, pos = read_utf8(data, pos, end)
        if pos >= end:
            raise malformed("subscription options missing")
        subscriptions.append(_subscription(topic_filter, data[pos], version))
        pos += 1
    if not subscriptions:
        raise protocol_error("SUBSCRIBE without subscriptions [MQTT-3.8.3-2]")
    return Subscribe(packet_id, tuple(subscriptions), props)


def _decode_suback(first: int, data: bytes, start: int, end: int, version: int) -> Suback:
    packet_id, pos = _packet_id(data, start, end)
    props, pos = _properties(data, pos, end, PacketType.SUBACK, version)
    codes = tuple(data[pos:end])
    if version != 5 and not _SUBACK_V311_CODES.issuperset(codes):
        raise malformed("reserved SUBACK return code")
    return Suback(packet_id, codes, props)


def _decode_unsubscribe(first: int, data: bytes, start: int, end: int,
                        version: int) -> Unsubscribe:
    packet_id, pos = _packet_id(data, start, end)
    props, pos = _properties(data, pos, end, PacketType.UNSUBSCRIBE, version)
    topic_filters = []
    while pos < end:
        topic_filter, pos = read_utf8(data, pos, end)
        topic_filters.append(topic_filter)
    if not topic_filters:
        raise protocol_error("UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]")
    return Unsubscribe(packet_id, tuple(topic_filters), props)


def _decode_unsuback(first: int, data: bytes, start: int, end: int, version: int) -> Unsuback:
    packet_id, pos = _packet_id(data, start, end)
    if version != 5:
        _expect_end(pos, end, "UNSUBACK")
        return Unsuback(packet_id)
    props, pos = _properties(data, pos, end, PacketType.UNSUBACK, version)
    return Unsuback(packet_id, tuple(data[pos:end]), props)


def _decode_empty(first: int, data: bytes, start: int, end: int, version: int):
    packet_type = first >> 4
    _expect_end(start, end, PacketType(packet_type).name)
    return _PINGREQ if packet_type == PacketType.PINGREQ else _PINGRESP


def _decode_reason_only(first: int, data: bytes, start: int, end: int, version: int):
    """DISCONNECT and AUTH: an optional reason code, then optional properties (5.0)."""
    packet_type = first >> 4
    cls = Disconnect if packet_type == PacketType.DISCONNECT else Auth
    if version != 5:
        if cls is Auth:
            raise malformed("packet type 15 is reserved before MQTT 5.0")
        _expect_end(start, end, "DISCONNECT")
        return cls()
    code, props, pos = 0, {}, start
    if pos < end:
        code = data[pos]
        pos += 1
        if pos < end:
            props, pos = decode_properties(data, pos, packet_type, end)
    _expect_end(pos, end, cls.__name__.upper())
    return cls(code, props)


def _decode_reserved(first: int, data: bytes, start: int, end: int, version: int):
    raise malformed("packet type 0 is reserved")


_DECODERS = (
    _decode_reserved, _decode_connect, _decode_connack, _decode_publish,
    _decode_ack, _decode_ack, _decode_ack, _decode_ack,
    _decode_subscribe, _decode_suback, _decode_unsubscribe, _decode_unsuback,
    _decode_empty, _decode_empty, _decode_reason_only, _decode_reason_only,
)


def _decode(first: int, data: bytes, start: int, end: int, version: int | None):
    packet_type = first >> 4
    if version is None and packet_type != PacketType.CONNECT:
        raise protocol_error("first packet must be CONNECT [MQTT-3.1.0-1]")
    required = _FIXED_FLAGS[packet_type]
    if required is not None and first & 0x0F != required:
        raise malformed(f"reserved flags 0x{first & 0x0F:X} in packet type {packet_type}"
                        " [MQTT-2.2.2-2]")
    return _DECODERS[packet_type](first, data, start, end, version)


def decode_packet(first_byte: int, body: bytes, version: int | None):
    """Decode one complete packet: its first byte and the `remaining length` bytes after
    the length. `version` None accepts only CONNECT."""
    if type(body) is not bytes:
        body = bytes(body)
    return _decode(first_byte, body, 0, len(body), version)


def _remaining_length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A multi-byte Remaining Length at `pos`: (value, body start), or (0, -1) while incomplete."""
    value = 0
    for index in range(4):
        if pos + index >= end:
            return 0, -1
        digit = data[pos + index]
        value |= (digit & 0x7F) << (7 * index)
        if digit < 0x80:
            if digit == 0:
                raise malformed("remaining length not in its shortest form [MQTT-1.5.5-1]")
            return value, pos + index + 1
    raise malformed("remaining length longer than 4 bytes")


class StreamDecoder:
    """Turns one connection's byte stream into packets, however the stream is chunked.

    `version` is None until a CONNECT is decoded (only CONNECT is accepted before),
    then its protocol level; a client-side owner sets it itself. If that CONNECT is
    refused but declared a valid protocol name and level, `version` is that level.
    A packet larger than `max_packet_size` (fixed header included) is refused with
    0x95 as soon as its fixed header is read, before its body is buffered; until
    the CONNECT is decoded the limit is `max_connect_packet_size`, so an
    unauthenticated peer holds at most that much (a refused CONNECT still sets
    `version` from the bytes at hand). After a ProtocolError the stream is
    unusable: close the connection. `counts` and `sizes` (16 slots, one per
    packet type number; a worker's connections share theirs) count the packets
    framed and their bytes. A `shared` decoder serves many connections between
    packets (they hold no decoder of their own while idle); the connection takes
    `own_tail()` after each feed, a decoder of its own once a partial packet waits.
    """

    __slots__ = ("version", "max_packet_size", "max_connect_packet_size", "bytes_in", "_chunks",
                 "_buffered", "_needed", "counts", "sizes", "shared")

    def __init__(self, max_packet_size: int = MAX_PACKET_SIZE,
                 max_connect_packet_size: int = MAX_PACKET_SIZE,
                 counts: list | None = None, sizes: list | None = None) -> None:
        self.version: int | None = None
        self.counts = [0] * 16 if counts is None else counts    # packets framed, by type number
        self.sizes = [0] * 16 if sizes is None else sizes       # their bytes, by type number
        self.max_packet_size = max_packet_size
        self.max_connect_packet_size = min(max_connect_packet_size, max_packet_size)
        self.bytes_in = 0
        self._chunks: list[bytes] | tuple = ()     # the incomplete tail, when there is one
        self._buffered = 0
        self._needed = 0
        self.shared = False

    @property
    def holds_partial(self) -> bool:
        return bool(self._chunks)

    def own_tail(self) -> "StreamDecoder":
        """Of a shared decoder after a feed: itself, or when a partial packet is left,
        a decoder of the connection's own holding it (this one is empty again)."""
        if not self._chunks:
            return self
        owned = StreamDecoder(self.max_packet_size, self.max_connect_packet_size, self.counts, self.sizes)
        owned.version = self.version
        owned._chunks, owned._buffered, owned._needed = self._chunks, self._buffered, self._needed
        self._chunks = ()
        return owned

    def feed(self, data: bytes) -> list:
        """Every packet completed by `data`; an incomplete tail is kept for the next call."""
        self.bytes_in += len(data)
        if self._chunks:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered < self._needed:
                return []
            data = b"".join(self._chunks)
            self._chunks = ()
        elif type(data) is not bytes:
            data = bytes(data)
        packets: list = []
        pos = self._parse(data, packets)
        if pos < len(data):
            self._chunks = [data[pos:]]
            self._buffered = len(data) - pos
        return packets

    def _parse(self, data: bytes, packets: list) -> int:
        """Append the complete packets in `data` to `packets`; return where the rest starts."""
        version = self.version
        limit = self.max_packet_size if version is not None else self.max_connect_packet_size
        append = packets.append
        counts, sizes = self.counts, self.sizes
        size = len(data)
        pos = 0
        self._needed = 0
        while pos < size:
            first = data[pos]
            if version is None and first & 0xF0 != 0x10:
                raise protocol_error("first packet must be CONNECT [MQTT-3.1.0-1]")
            if pos + 1 == size:
                break
            length = data[pos + 1]
            if length < 0x80:
                start = pos + 2
            else:
                length, start = _remaining_length(data, pos + 1, size)
                if start < 0:
                    break
            end = start + length
            if end - pos > limit:
                if version is None:
                    self.version = _declared_level(data, start, size)
                raise ProtocolError(ReasonCode.PACKET_TOO_LARGE,
                                    f"packet of {end - pos} bytes exceeds {limit}")
            if end > size:
                self._needed = end - pos
                break
            kind = first >> 4
            counts[kind] += 1
            sizes[kind] += end - pos
            if kind == 3:
                append(_decode_publish(first, data, start, end, version))
            elif first == 0x40 and length == 2:
                packet_id = (data[start] << 8) | data[start + 1]
                if not packet_id:
                    raise _zero_packet_id()
                append(_new_puback(packet_id))
            elif first == 0xC0 and length == 0:
                append(_PINGREQ)
            elif version is None:
                packet = self._decode_first_connect(first, data, start, end)
                version = packet.protocol_level
                limit = self.max_packet_size
                append(packet)
            else:
                append(_decode(first, data, start, end, version))
            pos = end
        return pos

    def _decode_first_connect(self, first: int, data: bytes, start: int, end: int) -> Connect:
        """The CONNECT that opens the stream sets `version`. When it is refused, `version`
        still takes the protocol level it declared if name and level were valid, so the
        owner can answer with a CONNACK of that version."""
        try:
            packet = _decode(first, data, start, end, None)
        except ProtocolError:
            self.version = _declared_level(data, start, end)
            raise
        self.version = packet.protocol_level
        return packet


def _declared_level(data: bytes, start: int, end: int) -> int | None:
    """The protocol level a CONNECT body declares, if its protocol name and level are valid."""
    try:
        name, pos = read_utf8(data, start, end)
    except ProtocolError:
        return None
    if pos < end and (name, data[pos]) in PROTOCOLS:
        return data[pos]
    return None
