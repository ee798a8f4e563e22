"""The protocol rules of `actors/channel.py` as pure code (CONNECT checks,
client limits, CONNACK negotiation, keepalive, session expiry, topic aliases,
the DISCONNECT rule, reason strings), with hypothesis where a rule has a
range of inputs."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from actormq.actors import channel
from actormq.actors.settings import BrokerSettings
from actormq.errors import ProtocolError
from actormq.transport.codec import Connack, Connect, Disconnect, Puback, Will

SETTINGS = BrokerSettings()
BOTH = frozenset((4, 5))


def verdict(packet, settings=SETTINGS, versions=BOTH, enhanced_auth=False):
    return channel.check_connect(packet, settings, versions, enhanced_auth)


# -- CONNECT -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_a_plain_connect_is_accepted(version):
    assert verdict(Connect("c", protocol_level=version)) == channel.ConnectVerdict(0, None)


def test_protocol_version_not_allowed_on_the_listener_0x84():
    assert verdict(Connect("c", protocol_level=4), versions=frozenset((5,))).refusal == 0x84


def test_authentication_method_without_enhanced_auth_0x8c():
    packet = Connect("c", protocol_level=5, properties={"authentication_method": "SCRAM-SHA-1"})
    assert verdict(packet).refusal == 0x8C
    assert verdict(packet, enhanced_auth=True).refusal == 0


@pytest.mark.parametrize("version", [4, 5])
def test_empty_client_id_gets_one_assigned_MQTT_3_1_3_6(version):
    got = verdict(Connect("", protocol_level=version))
    assert got.refusal == 0 and got.assigned.startswith("auto-")
    assert got.assigned != verdict(Connect("", protocol_level=version)).assigned


def test_empty_client_id_with_a_persistent_3_1_1_session_is_rejected_MQTT_3_1_3_8():
    assert verdict(Connect("", protocol_level=4, clean_start=False)).refusal == 0x85


def test_empty_client_id_when_not_allowed_0x85():
    settings = BrokerSettings(allow_empty_client_id=False)
    assert verdict(Connect("", protocol_level=5), settings).refusal == 0x85


def test_client_id_longer_than_the_limit_0x85():
    settings = BrokerSettings(max_client_id_len=4)
    assert verdict(Connect("abcd"), settings).refusal == 0
    assert verdict(Connect("abcde"), settings).refusal == 0x85


@pytest.mark.parametrize("will, settings, code", [
    (Will("a/+", b""), SETTINGS, 0x90),
    (Will("a/#", b""), SETTINGS, 0x90),
    (Will("a", b"", retain=True), BrokerSettings(retain_available=False), 0x9A),
    (Will("a", b"", qos=2), BrokerSettings(max_qos=1), 0x9B),
    (Will("a", b"", qos=1, retain=True), SETTINGS, 0),
], ids=["wildcard +", "wildcard #", "retain", "qos", "fine"])
def test_will_checks(will, settings, code):
    assert verdict(Connect("c", protocol_level=5, will=will), settings).refusal == code


@pytest.mark.parametrize("props", [{"receive_maximum": 0}, {"maximum_packet_size": 0}])
def test_zero_receive_maximum_or_packet_size_is_a_protocol_error(props):
    with pytest.raises(ProtocolError) as error:
        channel.client_limits(props)
    assert error.value.reason_code == 0x82


def test_client_limits_from_connect_properties():
    assert channel.client_limits({}) == channel.ClientLimits(65535, 0, True, 0)
    assert channel.client_limits({"receive_maximum": 5, "maximum_packet_size": 100,
                                  "request_problem_information": 0, "topic_alias_maximum": 3}) \
        == channel.ClientLimits(5, 100, False, 3)


# -- CONNACK negotiation ---------------------------------------------------------------------

@given(st.integers(0, 65535), st.integers(1, 65535))
def test_keepalive_is_capped_by_max_keepalive(requested, maximum):
    granted = channel.negotiated_keepalive(requested, BrokerSettings(max_keepalive=maximum))
    assert granted == min(requested, maximum)


@given(st.integers(0, 65535), st.integers(1, 65535))
def test_server_keepalive_overrides_the_client(requested, server):
    assert channel.negotiated_keepalive(requested, BrokerSettings(server_keepalive=server)) == server


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 100_000))
def test_session_expiry_is_capped(requested, cap):
    settings = BrokerSettings(max_session_expiry_interval=cap)
    got = channel.session_expiry(Connect("c", protocol_level=5,
                                         properties={"session_expiry_interval": requested}), settings)
    never = requested == 0xFFFFFFFF
    if cap:
        assert got == (cap if never else min(requested, cap))
    else:
        assert got == (None if never else requested)


@pytest.mark.parametrize("clean_start, expiration, expected", [
    (True, 0, 0), (False, 0, None), (False, 3600, 3600), (True, 3600, 0)])
def test_session_expiry_of_3_1_1(clean_start, expiration, expected):
    settings = BrokerSettings(persistent_client_expiration=expiration)
    assert channel.session_expiry(Connect("c", clean_start=clean_start), settings) == expected


def test_connack_properties_say_what_differs():
    settings = BrokerSettings(max_keepalive=30, max_session_expiry_interval=60, max_qos=1,
                              retain_available=False, receive_maximum=10)
    packet = Connect("", protocol_level=5, keepalive=100, properties={"session_expiry_interval": 600})
    props = channel.connack_properties(packet, "auto-1", channel.session_expiry(packet, settings),
                                       settings)
    assert props == {"assigned_client_identifier": "auto-1", "receive_maximum": 10, "maximum_qos": 1,
                     "retain_available": 0, "maximum_packet_size": settings.max_packet_size,
                     "topic_alias_maximum": settings.topic_alias_maximum, "server_keep_alive": 30,
                     "session_expiry_interval": 60}
    assert channel.connack_properties(Connect("c"), None, 0, settings) == {}


def test_connack_grants_never_expiring_as_0xffffffff():
    packet = Connect("c", protocol_level=5, properties={"session_expiry_interval": 10})
    assert channel.connack_properties(packet, None, None, SETTINGS)["session_expiry_interval"] \
        == 0xFFFFFFFF


# -- topic aliases ---------------------------------------------------------------------------

def test_inbound_alias_set_then_used():
    aliases = channel.InboundAliases(2)
    assert aliases.resolve("a/b", 1) == "a/b"
    assert aliases.resolve("", 1) == "a/b"
    assert aliases.resolve("c", 1) == "c"      # a topic name sets the alias again
    assert aliases.resolve("", 1) == "c"


@pytest.mark.parametrize("topic, alias, code", [("a", 0, 0x94), ("a", 3, 0x94), ("", 2, 0x82)])
def test_inbound_alias_errors(topic, alias, code):
    with pytest.raises(ProtocolError) as error:
        channel.InboundAliases(2).resolve(topic, alias)
    assert error.value.reason_code == code


@given(st.lists(st.sampled_from("abcdef"), max_size=30), st.integers(0, 4))
def test_outbound_aliases_number_the_first_topics(topics, maximum):
    aliases = channel.OutboundAliases(maximum)
    seen: dict[str, int] = {}
    for topic in topics:
        alias, new = aliases.lookup(topic)
        if topic in seen:
            assert (alias, new) == (seen[topic], False)
        elif len(seen) < maximum:
            assert (alias, new) == (len(seen) + 1, True)
            aliases.learned(topic, alias)
            seen[topic] = alias
        else:
            assert (alias, new) == (None, False)


# -- DISCONNECT ------------------------------------------------------------------------------

def test_normal_disconnect_drops_the_will_and_keeps_the_expiry():
    got = channel.on_disconnect(Disconnect(0), 60, SETTINGS)
    assert got == channel.Disconnected(False, 60, False, "normal disconnect")


def test_disconnect_with_will_message_keeps_the_will():
    assert channel.on_disconnect(Disconnect(0x04), 60, SETTINGS).keep_will


def test_disconnect_sets_a_new_expiry_within_the_cap():
    settings = BrokerSettings(max_session_expiry_interval=100)
    got = channel.on_disconnect(Disconnect(0, {"session_expiry_interval": 500}), 60, settings)
    assert (got.expiry_changed, got.expiry) == (True, 100)


def test_expiry_raised_on_disconnect_after_zero_is_a_protocol_error_MQTT_3_14_2_2():
    with pytest.raises(ProtocolError) as error:
        channel.on_disconnect(Disconnect(0, {"session_expiry_interval": 5}), 0, SETTINGS)
    assert error.value.reason_code == 0x82
    assert channel.on_disconnect(Disconnect(0, {"session_expiry_interval": 0}), 0, SETTINGS).expiry == 0


# -- reason strings ----------------------------------------------------------------------

def test_long_reason_string_is_bounded():
    data = channel.encode_with_reason(Puback(1, 0x80, {"reason_string": "x" * 1000}), 5, True, 0)
    # PUBACK, remaining length 264, packet id 1, reason, property length 259, 0x1F, length 256
    assert data[:11] == b"\x40\x88\x02" + b"\x00\x01\x80" + b"\x83\x02" + b"\x1f\x01\x00"
    assert len(data) == 3 + 264
    assert data.endswith(b"x" * 253 + b"...")


def test_reason_string_left_out_without_problem_information():
    packet = Puback(1, 0x80, {"reason_string": "why", "user_property": [("k", "v")]})
    # no properties left: the property length is left out too [MQTT-3.4.2.2.1]
    assert channel.encode_with_reason(packet, 5, False, 0) == b"\x40\x03\x00\x01\x80"


def test_connack_keeps_its_reason_string_without_problem_information():
    data = channel.encode_with_reason(Connack(False, 0x87, {"reason_string": "no"}), 5, False, 0)
    assert data == b"\x20\x08\x00\x87\x05\x1f\x00\x02no"


def test_reason_string_left_out_when_it_does_not_fit_the_maximum_packet_size():
    packet = Disconnect(0x8D, {"reason_string": "keepalive timeout"})
    assert channel.encode_with_reason(packet, 5, True, 10) == b"\xe0\x02\x8d\x00"
