"""Properties of the codec: encode -> decode is the identity for every packet and version;
how the byte stream is chunked does not matter; arbitrary bytes give packets or
ProtocolError and nothing else."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actormq.errors import ProtocolError
from actormq.transport.codec import (
    PROPERTIES, WILL, Auth, Connack, Connect, Disconnect, PacketType, Pingreq, Pingresp, Puback,
    Pubcomp, Publish, Pubrec, Pubrel, ReasonCode, StreamDecoder, Suback, Subscribe, Subscription,
    Unsuback, Unsubscribe, Will, decode_varint, encode, encode_varint,
)
from actormq.transport.codec.properties import (
    BINARY, BYTE, FOUR_BYTE_INT, NONZERO, STRING_PAIR, TWO_BYTE_INT, UTF8, VARINT,
)

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
STREAM_SETTINGS = settings(SETTINGS, max_examples=100)  # several packets per example
VERSIONS = (3, 4, 5)

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)
topic_names = text.filter(lambda t: t and "+" not in t and "#" not in t)
packet_ids = st.integers(1, 0xFFFF)
qos_levels = st.integers(0, 2)
reason_codes = st.sampled_from(sorted({int(code) for code in ReasonCode}))


def _value_strategy(prop):
    low = 1 if prop.name in NONZERO else 0
    return {
        BYTE: st.integers(0, 1),
        TWO_BYTE_INT: st.integers(low, 0xFFFF),
        FOUR_BYTE_INT: st.integers(low, 0xFFFF_FFFF),
        VARINT: st.integers(1, 268_435_455),
        UTF8: text,
        BINARY: st.binary(max_size=20),
        STRING_PAIR: st.tuples(text, text),
    }[prop.type]


def _values(prop, packet_type: int):
    value = _value_strategy(prop)
    if packet_type in prop.repeatable_in:
        return st.lists(value, min_size=1, max_size=3)
    return value


def properties(packet_type: int, version: int):
    """Up to four distinct properties valid for the packet type (none before 5.0)."""
    if version != 5:
        return st.just({})
    allowed = [prop for prop in PROPERTIES if packet_type in prop.packet_types]
    chosen = st.lists(st.sampled_from(allowed), unique_by=lambda prop: prop.id, max_size=4)
    return chosen.flatmap(lambda props: st.fixed_dictionaries(
        {prop.name: _values(prop, packet_type) for prop in props}))


@st.composite
def wills(draw, version):
    return Will(topic_name=draw(topic_names), payload=draw(st.binary(max_size=20)),
                qos=draw(qos_levels), retain=draw(st.booleans()),
                properties=draw(properties(WILL, version)))


@st.composite
def connects(draw, version):
    username = draw(st.none() | text)
    password = draw(st.none() | st.binary(max_size=10))
    if version < 5 and username is None:
        password = None
    return Connect(client_id=draw(text), protocol_level=version,
                   protocol_name="MQIsdp" if version == 3 else "MQTT",
                   clean_start=draw(st.booleans()), keepalive=draw(st.integers(0, 0xFFFF)),
                   will=draw(st.none() | wills(version)), username=username, password=password,
                   properties=draw(properties(PacketType.CONNECT, version)))


@st.composite
def publishes(draw, version):
    qos = draw(qos_levels)
    props = draw(properties(PacketType.PUBLISH, version))
    topic_name = draw(topic_names)
    if "topic_alias" in props and draw(st.booleans()):
        topic_name = ""
    return Publish(topic_name=topic_name, payload=draw(st.binary(max_size=300)), qos=qos,
                   retain=draw(st.booleans()), dup=bool(qos) and draw(st.booleans()),
                   packet_id=draw(packet_ids) if qos else None, properties=props)


def acks(cls, version):
    return st.builds(cls, packet_id=packet_ids,
                     reason_code=reason_codes if version == 5 else st.just(0),
                     properties=properties(cls.packet_type, version))


def subscriptions(version):
    if version != 5:
        return st.builds(Subscription, topic_filter=text, qos=qos_levels)
    return st.builds(Subscription, topic_filter=text, qos=qos_levels, no_local=st.booleans(),
                     retain_as_published=st.booleans(), retain_handling=st.integers(0, 2))


def connacks(version):
    codes = reason_codes if version == 5 else st.sampled_from([0, 0x84, 0x85, 0x86, 0x87, 0x88])
    return st.builds(Connack, session_present=st.booleans() if version > 3 else st.just(False),
                     reason_code=codes, properties=properties(PacketType.CONNACK, version))


def reason_only(cls, version):
    return st.builds(cls, reason_code=reason_codes if version == 5 else st.just(0),
                     properties=properties(cls.packet_type, version))


def packets(version, with_connect=True):
    """Every packet type valid in `version`."""
    suback_codes = reason_codes if version == 5 else st.sampled_from([0, 1, 2, 0x80])
    choices = [
        connacks(version), publishes(version),
        *(acks(cls, version) for cls in (Puback, Pubrec, Pubrel, Pubcomp)),
        st.builds(Subscribe, packet_id=packet_ids,
                  subscriptions=st.lists(subscriptions(version), min_size=1,
                                         max_size=4).map(tuple),
                  properties=properties(PacketType.SUBSCRIBE, version)),
        st.builds(Suback, packet_id=packet_ids,
                  reason_codes=st.lists(suback_codes, min_size=1, max_size=4).map(tuple),
                  properties=properties(PacketType.SUBACK, version)),
        st.builds(Unsubscribe, packet_id=packet_ids,
                  topic_filters=st.lists(text, min_size=1, max_size=4).map(tuple),
                  properties=properties(PacketType.UNSUBSCRIBE, version)),
        st.builds(Unsuback, packet_id=packet_ids,
                  reason_codes=st.lists(reason_codes, max_size=4).map(tuple)
                  if version == 5 else st.just(()),
                  properties=properties(PacketType.UNSUBACK, version)),
        st.just(Pingreq()), st.just(Pingresp()),
        reason_only(Disconnect, version),
    ]
    if version == 5:
        choices.append(reason_only(Auth, version))
    if with_connect:
        choices.append(connects(version))
    return st.one_of(choices)


def decode_stream(chunks, version):
    decoder = StreamDecoder()
    decoder.version = version
    return [packet for chunk in chunks for packet in decoder.feed(chunk)]


@pytest.mark.parametrize("version", VERSIONS)
@SETTINGS
@given(data=st.data())
def test_encode_decode_round_trip(version, data):
    packet = data.draw(packets(version))
    wire = encode(packet, version)
    assert decode_stream([wire], None if isinstance(packet, Connect) else version) == [packet]


@pytest.mark.parametrize("version", VERSIONS)
@STREAM_SETTINGS
@given(data=st.data())
def test_chunking_does_not_matter(version, data):
    sequence = [data.draw(connects(version))] + data.draw(
        st.lists(packets(version, with_connect=False), max_size=5))
    stream = b"".join(encode(packet, version) for packet in sequence)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    assert decode_stream(chunks, None) == sequence


def _decode_or_protocol_error(chunks, version):
    try:
        decoded = decode_stream(chunks, version)
    except ProtocolError as error:
        assert 0x80 <= error.reason_code <= 0xA2
        return None
    for packet in decoded:
        assert packet.packet_type in PacketType
    return decoded


def _reencodes(decoded, version):
    """A packet the decoder accepted encodes back to bytes that decode to the same packet."""
    for packet in decoded:
        level = packet.protocol_level if isinstance(packet, Connect) else version
        again = decode_stream([encode(packet, level)], None if isinstance(packet, Connect)
                              else level)
        assert again == [packet]


@pytest.mark.parametrize("version", (None, 4, 5))
@SETTINGS
@given(raw=st.binary(max_size=300), cut=st.integers(0, 300))
def test_arbitrary_bytes_give_packets_or_protocol_error(version, raw, cut):
    decoded = _decode_or_protocol_error([raw[:cut], raw[cut:]], version)
    if decoded is not None:
        _reencodes(decoded, version)


@st.composite
def mutated_streams(draw, version):
    """Valid streams with a few bytes replaced, inserted or removed."""
    sequence = draw(st.lists(packets(version), min_size=1, max_size=3))
    stream = bytearray(b"".join(encode(packet, version) for packet in sequence))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(stream)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if action == "insert":
            stream.insert(at, byte)
        elif at < len(stream):
            if action == "replace":
                stream[at] = byte
            else:
                del stream[at]
    return bytes(stream)


@pytest.mark.parametrize("version", VERSIONS)
@STREAM_SETTINGS
@given(data=st.data())
def test_mutated_packets_give_packets_or_protocol_error(version, data):
    raw = data.draw(mutated_streams(version))
    decoded = _decode_or_protocol_error([raw], version)
    if decoded is not None:
        _reencodes(decoded, version)


@SETTINGS
@given(value=st.integers(0, 268_435_455))
def test_varint_round_trip(value):
    wire = encode_varint(value)
    assert len(wire) == 1 + (value > 127) + (value > 16_383) + (value > 2_097_151)
    assert decode_varint(wire + b"tail", 0) == (value, len(wire))
