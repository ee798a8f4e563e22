"""Golden bytes for every packet of MQTT 3.1, 3.1.1 and 5.0, written by hand from the
specs, and the exact reason code of every malformed or forbidden input the codec rejects."""

import ast
import pathlib

import pytest

import actormq.transport.codec
from actormq.errors import ProtocolError
from actormq.transport.codec import (
    Auth, Connack, Connect, Disconnect, Pingreq, Pingresp, Puback, Pubcomp, Publish, Pubrec,
    Pubrel, ReasonCode, StreamDecoder, Suback, Subscribe, Subscription, Unsuback, Unsubscribe,
    Will, connack_return_code_v311, decode_packet, decode_varint, encode, encode_publish,
    encode_publish_template, encode_varint, suback_code_v311,
)

MALFORMED = ReasonCode.MALFORMED_PACKET
PROTOCOL_ERROR = ReasonCode.PROTOCOL_ERROR
TOPIC_NAME_INVALID = ReasonCode.TOPIC_NAME_INVALID


def wire(text: str) -> bytes:
    """Hex with spaces and '|' between fields, for readability."""
    return bytes.fromhex(text.replace("|", " "))


def decode_all(data: bytes, version: int | None) -> list:
    decoder = StreamDecoder()
    decoder.version = version
    return decoder.feed(data)


def decode_one(data: bytes, version: int | None):
    packets = decode_all(data, version)
    assert len(packets) == 1
    return packets[0]


def assert_rejected(data: bytes, version: int | None, reason_code: int) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_all(data, version)
    assert caught.value.reason_code == reason_code, caught.value
    return caught.value


# (name, version, bytes, packet): encode(packet, version) == bytes and bytes decode to packet.
GOLDEN = [
    ("v311_connect_minimal", 4,
     "10 0f | 00 04 4d 51 54 54 | 04 | 02 | 00 3c | 00 03 61 62 63",
     Connect(client_id="abc")),
    ("v311_connect_will_user_password", 4,
     "10 1b | 00 04 4d 51 54 54 | 04 | ec | 00 0a | 00 01 63 | 00 01 77 | 00 03 62 79 65"
     " | 00 01 75 | 00 01 70",
     Connect(client_id="c", clean_start=False, keepalive=10,
             will=Will(topic_name="w", payload=b"bye", qos=1, retain=True),
             username="u", password=b"p")),
    ("v31_connect_mqisdp", 3,
     "10 11 | 00 06 4d 51 49 73 64 70 | 03 | 02 | 00 3c | 00 03 61 62 63",
     Connect(client_id="abc", protocol_level=3, protocol_name="MQIsdp")),
    ("v311_connack_session_present", 4, "20 02 | 01 | 00", Connack(session_present=True)),
    ("v311_connack_not_authorized", 4, "20 02 | 00 | 05",
     Connack(reason_code=ReasonCode.NOT_AUTHORIZED)),
    ("v311_connack_bad_credentials", 4, "20 02 | 00 | 04",
     Connack(reason_code=ReasonCode.BAD_USER_NAME_OR_PASSWORD)),
    ("v311_publish_qos0", 4, "30 0a | 00 03 61 2f 62 | 68 65 6c 6c 6f",
     Publish(topic_name="a/b", payload=b"hello")),
    ("v311_publish_qos1_dup_retain", 4, "3b 0c | 00 03 61 2f 62 | 00 0a | 68 65 6c 6c 6f",
     Publish(topic_name="a/b", payload=b"hello", qos=1, retain=True, dup=True, packet_id=10)),
    ("v311_publish_qos2_empty_payload", 4, "34 07 | 00 03 61 2f 62 | ff ff",
     Publish(topic_name="a/b", qos=2, packet_id=65535)),
    ("v311_publish_two_byte_remaining_length", 4,
     "30 cb 01 | 00 01 74 | " + "78" * 200,
     Publish(topic_name="t", payload=b"x" * 200)),
    ("v311_puback", 4, "40 02 | 00 0a", Puback(packet_id=10)),
    ("v311_pubrec", 4, "50 02 | 00 0a", Pubrec(packet_id=10)),
    ("v311_pubrel", 4, "62 02 | 00 0a", Pubrel(packet_id=10)),
    ("v311_pubcomp", 4, "70 02 | 00 0a", Pubcomp(packet_id=10)),
    ("v311_subscribe", 4, "82 0e | 00 01 | 00 03 61 2f 62 | 01 | 00 03 63 2f 23 | 02",
     Subscribe(packet_id=1, subscriptions=(Subscription("a/b", qos=1),
                                           Subscription("c/#", qos=2)))),
    ("v311_suback", 4, "90 05 | 00 01 | 01 02 80",
     Suback(packet_id=1, reason_codes=(1, 2, 0x80))),
    ("v311_unsubscribe", 4, "a2 07 | 00 02 | 00 03 61 2f 62",
     Unsubscribe(packet_id=2, topic_filters=("a/b",))),
    ("v311_unsuback", 4, "b0 02 | 00 02", Unsuback(packet_id=2)),
    ("v311_pingreq", 4, "c0 00", Pingreq()),
    ("v311_pingresp", 4, "d0 00", Pingresp()),
    ("v311_disconnect", 4, "e0 00", Disconnect()),
    ("v5_connect_session_expiry", 5,
     "10 15 | 00 04 4d 51 54 54 | 05 | 02 | 00 3c | 05 11 00 00 00 78 | 00 03 61 62 63",
     Connect(client_id="abc", protocol_level=5,
             properties={"session_expiry_interval": 120})),
    ("v5_connect_will_properties_password_only", 5,
     "10 25 | 00 04 4d 51 54 54 | 05 | 56 | 00 1e | 07 26 00 01 6b 00 01 76 | 00 01 63"
     " | 05 18 00 00 00 05 | 00 01 77 | 00 01 78 | 00 02 70 77",
     Connect(client_id="c", protocol_level=5, keepalive=30,
             will=Will(topic_name="w", payload=b"x", qos=2,
                       properties={"will_delay_interval": 5}),
             password=b"pw", properties={"user_property": [("k", "v")]})),
    ("v5_connack", 5, "20 03 | 00 | 00 | 00", Connack()),
    ("v5_connack_properties", 5,
     "20 0e | 01 | 00 | 0b 21 00 0a 22 00 05 12 00 02 69 64",
     Connack(session_present=True,
             properties={"receive_maximum": 10, "topic_alias_maximum": 5,
                         "assigned_client_identifier": "id"})),
    ("v5_connack_not_authorized", 5, "20 03 | 00 | 87 | 00",
     Connack(reason_code=ReasonCode.NOT_AUTHORIZED)),
    ("v5_publish_qos0", 5, "30 06 | 00 01 74 | 00 | 68 69",
     Publish(topic_name="t", payload=b"hi")),
    ("v5_publish_qos1_properties", 5,
     "32 18 | 00 03 61 2f 62 | 00 0a | 0e 02 00 00 00 3c 03 00 01 74 0b 01 0b c8 01 | 68 69",
     Publish(topic_name="a/b", payload=b"hi", qos=1, packet_id=10,
             properties={"message_expiry_interval": 60, "content_type": "t",
                         "subscription_identifier": [1, 200]})),
    ("v5_publish_topic_alias_empty_topic", 5, "30 07 | 00 00 | 03 23 00 05 | 68",
     Publish(topic_name="", payload=b"h", properties={"topic_alias": 5})),
    ("v5_puback_success_short", 5, "40 02 | 00 0a", Puback(packet_id=10)),
    ("v5_puback_reason_code_only", 5, "40 03 | 00 0a | 10",
     Puback(packet_id=10, reason_code=ReasonCode.NO_MATCHING_SUBSCRIBERS)),
    ("v5_puback_reason_string", 5, "40 08 | 00 0a | 87 | 04 1f 00 01 78",
     Puback(packet_id=10, reason_code=ReasonCode.NOT_AUTHORIZED,
            properties={"reason_string": "x"})),
    ("v5_pubrec", 5, "50 03 | 00 0a | 10",
     Pubrec(packet_id=10, reason_code=ReasonCode.NO_MATCHING_SUBSCRIBERS)),
    ("v5_pubrel_not_found", 5, "62 03 | 00 0a | 92",
     Pubrel(packet_id=10, reason_code=ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)),
    ("v5_pubcomp", 5, "70 02 | 00 0a", Pubcomp(packet_id=10)),
    ("v5_subscribe_options_and_identifier", 5,
     "82 0b | 00 01 | 02 0b 07 | 00 03 61 2f 2b | 2d",
     Subscribe(packet_id=1,
               subscriptions=(Subscription("a/+", qos=1, no_local=True,
                                           retain_as_published=True, retain_handling=2),),
               properties={"subscription_identifier": 7})),
    ("v5_suback", 5, "90 05 | 00 01 | 00 | 01 8f",
     Suback(packet_id=1, reason_codes=(1, ReasonCode.TOPIC_FILTER_INVALID))),
    ("v5_unsubscribe", 5, "a2 08 | 00 02 | 00 | 00 03 61 2f 62",
     Unsubscribe(packet_id=2, topic_filters=("a/b",))),
    ("v5_unsuback", 5, "b0 05 | 00 02 | 00 | 00 11",
     Unsuback(packet_id=2, reason_codes=(0, ReasonCode.NO_SUBSCRIPTION_EXISTED))),
    ("v5_pingreq", 5, "c0 00", Pingreq()),
    ("v5_pingresp", 5, "d0 00", Pingresp()),
    ("v5_disconnect_normal", 5, "e0 00", Disconnect()),
    ("v5_disconnect_session_taken_over", 5, "e0 02 | 8e | 00",
     Disconnect(reason_code=ReasonCode.SESSION_TAKEN_OVER)),
    ("v5_disconnect_session_expiry", 5, "e0 07 | 00 | 05 11 00 00 00 00",
     Disconnect(properties={"session_expiry_interval": 0})),
    ("v5_auth_success", 5, "f0 00", Auth()),
    ("v5_auth_continue", 5, "f0 0a | 18 | 08 15 00 05 53 43 52 41 4d",
     Auth(reason_code=ReasonCode.CONTINUE_AUTHENTICATION,
          properties={"authentication_method": "SCRAM"})),
]


@pytest.mark.parametrize("version,text,packet", [g[1:] for g in GOLDEN],
                         ids=[g[0] for g in GOLDEN])
def test_encode_golden(version, text, packet):
    assert encode(packet, version) == wire(text)


@pytest.mark.parametrize("version,text,packet", [g[1:] for g in GOLDEN],
                         ids=[g[0] for g in GOLDEN])
def test_decode_golden(version, text, packet):
    connect = isinstance(packet, Connect)
    assert decode_one(wire(text), None if connect else version) == packet


@pytest.mark.parametrize("version,text,packet", [
    (5, "e0 01 | 04", Disconnect(reason_code=ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)),
    (5, "40 04 | 00 0a | 10 | 00", Puback(packet_id=10, reason_code=0x10)),
    (5, "f0 01 | 19", Auth(reason_code=ReasonCode.RE_AUTHENTICATE)),
], ids=["disconnect_reason_only", "puback_empty_properties", "auth_reason_only"])
def test_decode_short_forms(version, text, packet):
    assert decode_one(wire(text), version) == packet


def test_decoded_reason_codes_of_v311_connack_are_mqtt5_codes():
    codes = [decode_one(bytes((0x20, 2, 0, code)), 4).reason_code for code in range(6)]
    assert codes == [0, 0x84, 0x85, 0x88, 0x86, 0x87]


def test_v31_connack_ignores_reserved_acknowledge_byte():
    assert decode_one(wire("20 02 | 01 | 00"), 3) == Connack()
    assert encode(Connack(session_present=True), 3) == wire("20 02 | 00 | 00")


def test_user_properties_keep_order_and_duplicates():
    data = wire("30 19 | 00 01 74 | 14 26 00 01 61 00 01 31 26 00 01 61 00 01 32"
                " 26 00 01 62 00 00 | 68")
    packet = decode_one(data, 5)
    assert packet.properties == {"user_property": [("a", "1"), ("a", "2"), ("b", "")]}
    assert encode(packet, 5) == data


def test_encode_drops_properties_and_reason_codes_before_v5():
    assert encode(Puback(packet_id=1, reason_code=0x10, properties={"reason_string": "x"}),
                  4) == wire("40 02 | 00 01")
    assert encode(Disconnect(reason_code=0x8E), 4) == wire("e0 00")
    assert encode(Unsuback(packet_id=3, reason_codes=(0x11,)), 4) == wire("b0 02 | 00 03")
    assert encode(Publish("t", b"", properties={"topic_alias": 1}), 4) == wire("30 03 00 01 74")
    with pytest.raises(ValueError):
        encode(Auth(), 4)


@pytest.mark.parametrize("reason_code,expected", [
    (ReasonCode.SUCCESS, 0), (ReasonCode.UNSUPPORTED_PROTOCOL_VERSION, 1),
    (ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, 2), (ReasonCode.SERVER_UNAVAILABLE, 3),
    (ReasonCode.SERVER_BUSY, 3), (ReasonCode.SERVER_SHUTTING_DOWN, 3),
    (ReasonCode.UNSPECIFIED_ERROR, 3), (ReasonCode.BAD_USER_NAME_OR_PASSWORD, 4),
    (ReasonCode.NOT_AUTHORIZED, 5), (ReasonCode.BANNED, 5),
    (ReasonCode.BAD_AUTHENTICATION_METHOD, 5), (4, 4),
])
def test_connack_return_code_v311(reason_code, expected):
    assert connack_return_code_v311(reason_code) == expected
    assert encode(Connack(reason_code=reason_code), 4)[3] == expected


def test_suback_code_v311():
    assert [suback_code_v311(c) for c in (0, 1, 2, 0x80, 0x87, 0x8F, 0xA2)] == \
        [0, 1, 2, 0x80, 0x80, 0x80, 0x80]
    assert encode(Suback(packet_id=1, reason_codes=(1, 0x87)), 4) == wire("90 04 00 01 01 80")


def test_reason_code_aliases():
    assert ReasonCode.NORMAL_DISCONNECTION == ReasonCode.SUCCESS == ReasonCode.GRANTED_QOS_0 == 0
    assert ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED == 0xA2


@pytest.mark.parametrize("value,text", [
    (0, "00"), (127, "7f"), (128, "80 01"), (16_383, "ff 7f"), (16_384, "80 80 01"),
    (2_097_151, "ff ff 7f"), (2_097_152, "80 80 80 01"), (268_435_455, "ff ff ff 7f"),
])
def test_variable_byte_integer_table_section_1_5_5(value, text):
    assert encode_varint(value) == wire(text)
    assert decode_varint(wire(text), 0) == (value, len(wire(text)))


def test_publish_template_patches_packet_id_and_dup():
    template = encode_publish_template("a/b", b"hello", 1, True, None, 4)
    assert template.to_bytes(10) == wire("33 0c | 00 03 61 2f 62 | 00 0a | 68 65 6c 6c 6f")
    assert template.to_bytes(10, dup=True) == wire("3b 0c 00 03 61 2f 62 00 0a 68 65 6c 6c 6f")
    qos0 = encode_publish_template("t", b"hi", 0, False, None, 5)
    assert qos0.to_bytes() == wire("30 06 00 01 74 00 68 69")
    assert encode_publish("t", b"hi", 0, False, False, None, None, 5) == qos0.to_bytes()


# ---- fixed header ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "63 02 00 0a",            # PUBREL flags must be 0010
    "60 02 00 0a",
    "80 06 00 01 00 01 74 00",  # SUBSCRIBE flags must be 0010
    "a0 05 00 01 00 01 74",   # UNSUBSCRIBE flags must be 0010
    "41 02 00 0a",            # PUBACK flags must be 0000
    "c8 00",                  # PINGREQ
    "e2 00",                  # DISCONNECT
])
def test_reserved_flags_rejected_MQTT_2_2_2_2(text):
    assert_rejected(wire(text), 4, MALFORMED)


def test_connect_fixed_header_flags_rejected_MQTT_2_2_2_2():
    assert_rejected(wire("11 0f 00 04 4d 51 54 54 04 02 00 3c 00 03 61 62 63"), None, MALFORMED)


def test_packet_type_0_is_reserved():
    assert_rejected(wire("00 00"), 4, MALFORMED)


def test_auth_is_reserved_before_v5():
    assert_rejected(wire("f0 00"), 4, MALFORMED)


def test_remaining_length_longer_than_4_bytes_rejected():
    assert_rejected(wire("30 ff ff ff ff 7f"), 4, MALFORMED)


def test_remaining_length_not_minimal_rejected_MQTT_1_5_5_1():
    assert_rejected(wire("c0 80 00"), 4, MALFORMED)


def test_maximum_packet_size_checked_before_body_is_buffered():
    decoder = StreamDecoder(max_packet_size=100)
    decoder.version = 5
    assert len(decoder.feed(wire("30 61 00 01 74 00") + b"x" * 93)) == 1  # 99 bytes: fits
    with pytest.raises(ProtocolError) as caught:
        decoder.feed(wire("30 63"))  # fixed header of a 101-byte packet, no body yet
    assert caught.value.reason_code == ReasonCode.PACKET_TOO_LARGE


def test_maximum_packet_size_with_four_byte_length():
    with pytest.raises(ProtocolError) as caught:
        StreamDecoder(max_packet_size=1_000_000).feed(wire("10 ff ff ff 7f"))
    assert caught.value.reason_code == ReasonCode.PACKET_TOO_LARGE


def test_first_packet_must_be_connect_MQTT_3_1_0_1():
    assert_rejected(wire("c0 00"), None, PROTOCOL_ERROR)
    assert_rejected(wire("30"), None, PROTOCOL_ERROR)  # known from the first byte alone
    with pytest.raises(ProtocolError) as caught:
        decode_packet(0xC0, b"", None)
    assert caught.value.reason_code == PROTOCOL_ERROR


def test_version_is_learnt_from_connect():
    decoder = StreamDecoder()
    connect = wire("10 0d 00 04 4d 51 54 54 05 02 00 3c 00 00 00 | 30 04 00 01 74 00")
    packets = decoder.feed(connect)
    assert decoder.version == 5
    assert packets[1] == Publish(topic_name="t")


def test_byte_by_byte_feed_gives_same_packets():
    golden_v5 = [(text, packet) for name, version, text, packet in GOLDEN
                 if version == 5 and not isinstance(packet, Connect)]
    stream = b"".join(wire(text) for text, _ in golden_v5)
    decoder = StreamDecoder()
    decoder.version = 5
    got = [packet for i in range(len(stream)) for packet in decoder.feed(stream[i:i + 1])]
    assert got == [packet for _, packet in golden_v5]
    assert decoder.bytes_in == len(stream)


# ---- PUBLISH --------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_publish_qos_3_rejected_MQTT_3_3_1_4(version):
    assert_rejected(wire("36 07 00 01 74 00 01 00 68"), version, MALFORMED)


@pytest.mark.parametrize("version", [4, 5])
def test_publish_dup_on_qos_0_rejected_MQTT_3_3_1_2(version):
    assert_rejected(wire("38 04 00 01 74 00"), version, MALFORMED)


@pytest.mark.parametrize("version", [4, 5])
def test_publish_packet_id_0_rejected_MQTT_2_2_1_3(version):
    assert_rejected(wire("32 06 00 01 74 00 00 00"), version, MALFORMED)


@pytest.mark.parametrize("topic", ["612f2b", "612f23", "23", "2b"])
@pytest.mark.parametrize("version", [4, 5])
def test_publish_topic_wildcards_rejected_MQTT_3_3_2_2(topic, version):
    raw = bytes.fromhex(topic)
    data = bytes((0x30, 2 + len(raw) + (version == 5), 0, len(raw))) + raw + \
        (b"\x00" if version == 5 else b"")
    assert_rejected(data, version, TOPIC_NAME_INVALID)


def test_publish_empty_topic_rejected_v311_MQTT_4_7_3_1():
    assert_rejected(wire("30 03 00 00 68"), 4, TOPIC_NAME_INVALID)


def test_publish_empty_topic_without_alias_rejected_v5():
    assert_rejected(wire("30 04 00 00 00 68"), 5, TOPIC_NAME_INVALID)


def test_publish_topic_alias_0_rejected_MQTT_3_3_2_8():
    assert_rejected(wire("30 07 00 00 03 23 00 00 68"), 5, ReasonCode.TOPIC_ALIAS_INVALID)


def test_publish_topic_length_past_end_rejected():
    assert_rejected(wire("30 04 00 05 61 62"), 4, MALFORMED)


def test_publish_qos1_truncated_packet_id_rejected():
    assert_rejected(wire("32 04 00 01 74 00"), 4, MALFORMED)


def test_publish_missing_property_length_rejected_v5():
    assert_rejected(wire("30 03 00 01 74"), 5, MALFORMED)


# ---- UTF-8 encoded strings ------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "ff",          # never valid in UTF-8
    "c0 af",       # overlong '/'
    "ed a0 80",    # UTF-16 surrogate U+D800
    "e2 82",       # truncated sequence
])
def test_ill_formed_utf8_rejected_MQTT_1_5_4_1(raw):
    data = wire(raw)
    assert_rejected(bytes((0x30, 2 + len(data), 0, len(data))) + data, 4, MALFORMED)


def test_null_character_rejected_MQTT_1_5_4_2():
    assert_rejected(wire("30 05 00 03 61 00 62"), 4, MALFORMED)
    assert_rejected(wire("10 10 00 04 4d 51 54 54 04 02 00 3c 00 04 61 62 00 63"), None,
                    MALFORMED)


def test_non_ascii_utf8_accepted():
    text = "ä/€/𝄞"
    raw = text.encode()
    data = bytes((0x30, 2 + len(raw), 0, len(raw))) + raw
    assert decode_one(data, 4) == Publish(topic_name=text)


# ---- CONNECT --------------------------------------------------------------------------------

CONNECT_HEAD = "00 04 4d 51 54 54 04"


def connect(flags: int, rest: str, head: str = CONNECT_HEAD) -> bytes:
    body = wire(head) + bytes((flags,)) + wire("00 3c 00 01 63") + wire(rest)
    return bytes((0x10, len(body))) + body


def test_connect_reserved_flag_rejected_MQTT_3_1_2_3():
    assert_rejected(connect(0x03, ""), None, MALFORMED)


def test_connect_will_qos_without_will_flag_rejected_MQTT_3_1_2_13():
    assert_rejected(connect(0x0A, ""), None, MALFORMED)


def test_connect_will_qos_3_rejected_MQTT_3_1_2_14():
    assert_rejected(connect(0x1E, "00 01 77 00 00"), None, MALFORMED)


def test_connect_will_retain_without_will_flag_rejected_MQTT_3_1_2_15():
    assert_rejected(connect(0x22, ""), None, MALFORMED)


def test_connect_password_without_user_name_rejected_v311_MQTT_3_1_2_22():
    assert_rejected(connect(0x42, "00 01 70"), None, MALFORMED)


def test_connect_password_without_user_name_accepted_v5():
    data = connect(0x42, "00 01 70", head="00 04 4d 51 54 54 05").replace(
        wire("00 3c 00 01 63"), wire("00 3c 00 00 01 63"))
    data = bytes((0x10, len(data) - 2)) + data[2:]
    packet = decode_one(data, None)
    assert packet.password == b"p" and packet.username is None


@pytest.mark.parametrize("head", [
    "00 04 4d 51 54 54 06",            # MQTT level 6
    "00 04 4d 51 54 54 03",            # MQTT level 3
    "00 06 4d 51 49 73 64 70 04",      # MQIsdp level 4
    "00 04 4d 51 54 53 04",            # MQTS
])
def test_connect_unsupported_protocol_rejected_MQTT_3_1_2_2(head):
    assert_rejected(connect(0x02, "", head=head), None, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION)


@pytest.mark.parametrize("topic", ["2b", "612f23", ""])
def test_connect_will_topic_must_be_topic_name(topic):
    raw = bytes.fromhex(topic)
    rest = bytes((0, len(raw))) + raw + wire("00 00")
    assert_rejected(connect(0x06, rest.hex()), None, TOPIC_NAME_INVALID)


def test_connect_trailing_bytes_rejected():
    assert_rejected(connect(0x02, "00"), None, MALFORMED)


def test_connect_truncated_rejected():
    assert_rejected(wire("10 08 00 04 4d 51 54 54 04 02"), None, MALFORMED)


def test_connect_user_name_flag_without_user_name_rejected():
    assert_rejected(connect(0x82, ""), None, MALFORMED)


# ---- acknowledgements, SUBSCRIBE, UNSUBSCRIBE, empty packets --------------------------------

@pytest.mark.parametrize("text", ["40 03 00 0a 00", "50 03 00 0a 00", "62 03 00 0a 00",
                                  "70 03 00 0a 00", "b0 03 00 02 00", "c0 01 00",
                                  "d0 01 00", "e0 01 00", "20 03 00 00 00"])
def test_v311_length_mismatch_rejected(text):
    assert_rejected(wire(text), 4, MALFORMED)


@pytest.mark.parametrize("text", ["40 01 00", "82 01 00", "90 00", "20 01 00"])
def test_truncated_rejected(text):
    assert_rejected(wire(text), 5, MALFORMED)


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_packet_id_0_rejected_MQTT_2_2_1_3(version):
    props = "00 |" if version == 5 else ""
    body = wire(f"00 00 | {props} 00 01 74 | 00")
    assert_rejected(bytes((0x82, len(body))) + body, version, MALFORMED)


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_packet_id_0_rejected_MQTT_2_2_1_3(version):
    props = "00 |" if version == 5 else ""
    body = wire(f"00 00 | {props} 00 01 74")
    assert_rejected(bytes((0xA2, len(body))) + body, version, MALFORMED)


def test_subscribe_without_subscriptions_rejected_v311_MQTT_3_8_3_3():
    assert_rejected(wire("82 02 00 01"), 4, PROTOCOL_ERROR)


def test_subscribe_without_subscriptions_rejected_v5_MQTT_3_8_3_2():
    assert_rejected(wire("82 03 00 01 00"), 5, PROTOCOL_ERROR)


def test_unsubscribe_without_topic_filters_rejected_MQTT_3_10_3_2():
    assert_rejected(wire("a2 02 00 01"), 4, PROTOCOL_ERROR)
    assert_rejected(wire("a2 03 00 01 00"), 5, PROTOCOL_ERROR)


@pytest.mark.parametrize("options", [0x04, 0x08, 0x10, 0x80])
def test_subscribe_reserved_option_bits_rejected_v311_MQTT_3_8_3_4(options):
    assert_rejected(wire("82 06 00 01 00 01 74") + bytes((options,)), 4, MALFORMED)


@pytest.mark.parametrize("options", [0x40, 0x80])
def test_subscribe_reserved_option_bits_rejected_v5_MQTT_3_8_3_5(options):
    assert_rejected(wire("82 07 00 01 00 00 01 74") + bytes((options,)), 5, MALFORMED)


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_qos_3_rejected_MQTT_3_8_3_4(version):
    props = "00" if version == 5 else ""
    body = wire(f"00 01 {props} 00 01 74 03")
    assert_rejected(bytes((0x82, len(body))) + body, version, MALFORMED)


def test_subscribe_retain_handling_3_is_protocol_error_v5():
    assert_rejected(wire("82 07 00 01 00 00 01 74 30"), 5, PROTOCOL_ERROR)


def test_subscribe_missing_options_rejected():
    assert_rejected(wire("82 05 00 01 00 01 74"), 4, MALFORMED)


def test_v311_reserved_connack_return_code_rejected():
    assert_rejected(wire("20 02 00 06"), 4, MALFORMED)


def test_v311_connack_reserved_acknowledge_flags_rejected():
    assert_rejected(wire("20 02 02 00"), 4, MALFORMED)


def test_v311_reserved_suback_return_code_rejected():
    assert_rejected(wire("90 03 00 01 03"), 4, MALFORMED)


@pytest.mark.parametrize("first", [0x40, 0x50, 0x62, 0x70, 0x90, 0xB0])
def test_ack_packet_id_0_rejected(first):
    assert_rejected(bytes((first, 2, 0, 0)), 4, MALFORMED)


# ---- properties -----------------------------------------------------------------------------

def publish_v5(props: str) -> bytes:
    block = wire(props)
    body = wire("00 01 74") + bytes((len(block),)) + block
    return bytes((0x30, len(body))) + body


def test_property_twice_is_protocol_error():
    assert_rejected(publish_v5("02 00 00 00 01 02 00 00 00 02"), 5, PROTOCOL_ERROR)


def test_subscription_identifier_twice_in_subscribe_is_protocol_error():
    assert_rejected(wire("82 0a 00 01 04 0b 01 0b 02 00 01 74 00"), 5, PROTOCOL_ERROR)


def test_property_not_valid_for_packet_is_malformed():
    assert_rejected(publish_v5("11 00 00 00 01"), 5, MALFORMED)  # session expiry in PUBLISH
    assert_rejected(wire("e0 04 00 02 23 00"), 5, MALFORMED)      # topic alias in DISCONNECT


def test_unknown_property_identifier_is_malformed():
    assert_rejected(publish_v5("7f 00"), 5, MALFORMED)


def test_subscription_identifier_0_is_protocol_error():
    assert_rejected(publish_v5("0b 00"), 5, PROTOCOL_ERROR)
    assert_rejected(wire("82 09 | 00 01 | 02 0b 00 | 00 01 74 | 00"), 5, PROTOCOL_ERROR)


def test_receive_maximum_0_is_protocol_error():
    data = wire("10 13 | 00 04 4d 51 54 54 05 02 00 3c | 03 21 00 00 | 00 03 61 62 63")
    assert_rejected(data, None, PROTOCOL_ERROR)


def test_boolean_byte_property_other_than_0_or_1_is_protocol_error():
    data = wire("10 12 | 00 04 4d 51 54 54 05 02 00 3c | 02 17 02 | 00 03 61 62 63")
    assert_rejected(data, None, PROTOCOL_ERROR)


def test_property_length_past_end_is_malformed():
    assert_rejected(wire("30 05 00 01 74 09 01"), 5, MALFORMED)


def test_property_value_past_property_length_is_malformed():
    assert_rejected(wire("30 09 00 01 74 02 02 00 00 00 01"), 5, MALFORMED)


def test_will_property_not_valid_in_connect_properties():
    data = wire("10 15 | 00 04 4d 51 54 54 05 02 00 3c | 05 18 00 00 00 05 | 00 03 61 62 63")
    assert_rejected(data, None, MALFORMED)


def test_refused_connect_still_tells_its_version():
    decoder = StreamDecoder()
    with pytest.raises(ProtocolError):
        decoder.feed(wire("10 0d 00 04 4d 51 54 54 05 03 00 3c 00 00 00"))  # reserved flag
    assert decoder.version == 5
    decoder = StreamDecoder()
    with pytest.raises(ProtocolError):
        decoder.feed(wire("10 0c 00 04 4d 51 54 54 07 02 00 3c 00 00"))  # level 7
    assert decoder.version is None


def test_codec_does_no_io():
    """The codec is pure: no sockets, event loop, clock or logging."""
    forbidden = {"socket", "asyncio", "time", "logging", "selectors", "threading"}
    for path in pathlib.Path(actormq.transport.codec.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not names & forbidden, f"{path.name} imports {names & forbidden}"
