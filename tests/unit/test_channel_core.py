"""The per-client protocol core (`channel.Channel`) driven without sockets:
packets and events in, effects out (`effects`). CONNECT with the refusals the
core decides on its own (5.0 reason codes and the 3.1.1 return codes they
become on the wire, golden bytes written here), SUBSCRIBE, PUBLISH QoS 0/1/2
and its acks, topic aliases, PINGREQ, DISCONNECT, keepalive, takeover, will
delay. Bans and authentication need the broker: see test_core."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, strategies as st

from actormq.actors import effects
from actormq.actors.channel import Channel, Disconnected, will_delay
from actormq.actors.settings import BrokerSettings
from actormq.errors import ProtocolError
from actormq.hooks import Hooks
from actormq.transport.codec import (Auth, Connack, Connect, Disconnect, Pingreq, Pingresp, Puback,
                                     Pubcomp, Publish, Pubrec, Pubrel, Suback, Subscribe,
                                     Subscription, Unsubscribe, Will, encode)
from actormq.transport.listeners import DEFAULT_LISTENER

SETTINGS = BrokerSettings()


def core(settings=SETTINGS, listener=DEFAULT_LISTENER) -> Channel:
    return Channel(settings, listener, Hooks())


def connected(version: int = 5, settings=SETTINGS, **fields) -> Channel:
    """A core whose CONNECT was accepted and whose session is open."""
    channel = core(settings)
    packet = Connect("c", protocol_level=version, **fields)
    accept = channel.handle(packet)
    assert accept == effects.Accept(packet, None)
    channel.accept_session(packet, None)
    channel.session = object()      # only its presence counts
    return channel


def refusal(packet: Connect, settings=SETTINGS, listener=DEFAULT_LISTENER) -> int:
    effect = core(settings, listener).handle(packet)
    assert type(effect) is effects.Refuse and effect.client_id == packet.client_id
    return effect.reply.reason_code


# -- CONNECT ----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_a_plain_connect_is_accepted_and_the_session_opens_after(version):
    channel = core()
    packet = Connect("c", protocol_level=version)
    assert channel.handle(packet) == effects.Accept(packet, None)
    assert channel.version == version


# (packet, settings, listener versions, 5.0 reason code, 3.1.1 CONNACK on the wire)
REFUSALS = [
    ("protocol version not allowed here", Connect("c", protocol_level=4), {}, frozenset((5,)),
     0x84, b"\x20\x02\x00\x01"),
    ("empty client id with a persistent 3.1.1 session", Connect("", protocol_level=4, clean_start=False),
     {}, None, 0x85, b"\x20\x02\x00\x02"),
    ("empty client id not allowed", Connect("", protocol_level=4), {"allow_empty_client_id": False},
     None, 0x85, b"\x20\x02\x00\x02"),
    ("client id too long", Connect("c" * 24, protocol_level=4), {"max_client_id_len": 23}, None,
     0x85, b"\x20\x02\x00\x02"),
]


@pytest.mark.parametrize("name, packet, changes, versions, code, v311", REFUSALS,
                         ids=[r[0] for r in REFUSALS])
def test_connect_refusals_with_their_3_1_1_return_codes(name, packet, changes, versions, code, v311):
    listener = DEFAULT_LISTENER if versions is None else \
        dataclasses.replace(DEFAULT_LISTENER, allowed_protocol_versions=versions)
    assert refusal(packet, dataclasses.replace(SETTINGS, **changes), listener) == code
    assert encode(Connack(False, code), 4) == v311


V5_REFUSALS = [
    ("authentication method without enhanced auth",
     Connect("c", protocol_level=5, properties={"authentication_method": "SCRAM-SHA-1"}), {}, 0x8C),
    ("client id too long", Connect("c" * 24, protocol_level=5), {"max_client_id_len": 23}, 0x85),
    ("will topic with a wildcard", Connect("c", protocol_level=5, will=Will("a/#", b"x")), {}, 0x90),
    ("retained will without retain", Connect("c", protocol_level=5, will=Will("a", b"x", retain=True)),
     {"retain_available": False}, 0x9A),
    ("will QoS over the maximum", Connect("c", protocol_level=5, will=Will("a", b"x", qos=2)),
     {"max_qos": 1}, 0x9B),
]


@pytest.mark.parametrize("name, packet, changes, code", V5_REFUSALS, ids=[r[0] for r in V5_REFUSALS])
def test_v5_connect_refusals(name, packet, changes, code):
    assert refusal(packet, dataclasses.replace(SETTINGS, **changes)) == code


def test_empty_client_id_gets_one_assigned_and_the_connack_says_it():
    channel = core()
    packet = Connect("", protocol_level=5)
    accept = channel.handle(packet)
    assert accept.assigned.startswith("auto-")
    props = channel.accept_session(packet, accept.assigned)
    assert props["assigned_client_identifier"] == accept.assigned


@pytest.mark.parametrize("props", [{"receive_maximum": 0}, {"maximum_packet_size": 0}])
def test_a_zero_limit_is_a_protocol_error_answered_with_connack_0x82(props):
    channel = core()
    with pytest.raises(ProtocolError) as error:
        channel.handle(Connect("c", protocol_level=5, properties=props))
    effect = channel.on_protocol_error(error.value, 5)
    assert type(effect) is effects.Refuse and effect.reply.reason_code == 0x82


@pytest.mark.parametrize("code", [0x81, 0x82, 0x95, 0x99])
def test_a_broken_5_0_connect_gets_a_connack_with_the_codec_s_reason_code(code):
    """Malformed (0x81), protocol error (0x82), too large (0x95), bad will payload (0x99)."""
    effect = core().on_protocol_error(ProtocolError(code, "from the codec"), 5)
    assert effect == effects.Refuse(Connack(False, code, {"reason_string": "from the codec"}))
    # 2 + property length 1 + reason string id 1 + length 2 + 14 characters = 20
    assert encode(effect.reply, 5)[:4] == bytes((0x20, 20, 0x00, code))


def test_unsupported_protocol_version_gets_the_3_1_1_refusal_bytes():
    error = ProtocolError(0x84, "protocol level 6")
    assert core().on_protocol_error(error, None) == effects.Refuse(b"\x20\x02\x00\x01")


def test_a_broken_3_1_1_connect_closes_without_a_word():
    effect = core().on_protocol_error(ProtocolError(0x82, "bad flags"), 4)
    assert effect == effects.Close(0, "bad flags")


def test_client_limits_are_taken_from_the_connect():
    channel = connected(5, properties={"receive_maximum": 10, "maximum_packet_size": 500,
                                       "request_problem_information": 0, "topic_alias_maximum": 3})
    assert (channel.client_receive_maximum, channel.max_packet_out, channel.problem_info) == \
        (10, 500, False)
    assert channel.alias_out.maximum == 3


@pytest.mark.parametrize("packet, detail", [
    (Subscribe(1, [Subscription("t")]), "first packet must be CONNECT"),
    (Publish("t", b"x"), "first packet must be CONNECT"),
    (Auth(), "first packet must be CONNECT"),
])
def test_nothing_but_connect_comes_first_MQTT_3_1_0_1(packet, detail):
    with pytest.raises(ProtocolError, match=detail):
        core().handle(packet)


def test_a_second_connect_is_a_protocol_error_MQTT_3_1_0_2():
    with pytest.raises(ProtocolError, match="second CONNECT"):
        connected().handle(Connect("c", protocol_level=5))


@pytest.mark.parametrize("packet", [Connack(False, 0), Suback(1, [0]), Pingresp()])
def test_packets_only_servers_send_are_protocol_errors(packet):
    with pytest.raises(ProtocolError) as error:
        connected().handle(packet)
    assert error.value.reason_code == 0x82


# -- keepalive and session expiry --------------------------------------------------------------

@given(st.integers(1, 65535), st.integers(1, 65535))
def test_keepalive_deadline_is_one_and_a_half_times_the_granted_keepalive(requested, maximum):
    settings = dataclasses.replace(SETTINGS, max_keepalive=maximum)
    channel = core(settings)
    packet = Connect("c", protocol_level=5, keepalive=requested)
    props = channel.accept_session(packet, None)
    granted = min(requested, maximum)
    assert channel.keepalive_deadline == granted * 1.5
    assert props.get("server_keep_alive", requested) == granted


def test_before_connect_the_deadline_is_the_connect_timeout():
    assert core().keepalive_deadline == SETTINGS.connect_timeout


def test_keepalive_expiry_closes_with_0x8d_or_silently_before_connect():
    assert core().on_keepalive_expired() == effects.CLOSE_SILENTLY
    assert connected().on_keepalive_expired() == effects.Close(0x8D, "keepalive timeout")


def test_takeover_closes_with_0x8e():
    assert connected().on_taken_over().reason_code == 0x8E


def test_a_protocol_error_after_connect_is_a_disconnect_with_its_code():
    assert connected().on_protocol_error(ProtocolError(0x94, "alias"), 5) == effects.Close(0x94, "alias")


# -- SUBSCRIBE, PUBLISH and acks ---------------------------------------------------------------

@pytest.mark.parametrize("packet", [
    Subscribe(1, [Subscription("a/#", qos=1)]), Unsubscribe(2, ["a/#"]), Puback(3), Pubrec(4),
    Pubrel(5), Pubcomp(6)])
def test_subscriptions_and_acks_go_to_the_session_as_they_are(packet):
    assert connected().handle(packet) is packet


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_a_publish_of_each_qos_is_routed_as_it_came_no_copy(qos):
    packet = Publish("t", b"x", qos=qos, packet_id=7 if qos else None)
    assert connected(4).handle(packet) is packet


def test_publish_over_the_maximum_qos_0x9b():
    with pytest.raises(ProtocolError) as error:
        connected(settings=dataclasses.replace(SETTINGS, max_qos=1)).handle(
            Publish("t", b"x", qos=2, packet_id=1))
    assert error.value.reason_code == 0x9B


def test_retained_publish_without_retain_0x9a():
    with pytest.raises(ProtocolError) as error:
        connected(settings=dataclasses.replace(SETTINGS, retain_available=False)).handle(
            Publish("t", b"x", retain=True))
    assert error.value.reason_code == 0x9A


def test_payload_not_utf8_when_it_says_so_0x99():
    with pytest.raises(ProtocolError) as error:
        connected().handle(Publish("t", b"\xff", properties={"payload_format_indicator": 1}))
    assert error.value.reason_code == 0x99


def test_pingreq_gets_the_shared_pingresp():
    assert connected().handle(Pingreq()) is effects.PINGRESP
    assert effects.PINGRESP.data == b"\xd0\x00"


def test_auth_goes_to_the_hook_chain():
    packet = Auth(0x18, {"authentication_method": "SCRAM-SHA-1"})
    assert connected().handle(packet) == effects.AskHooks(packet)


# -- topic aliases -----------------------------------------------------------------------------

def test_topic_alias_set_then_used():
    channel = connected()
    first = channel.handle(Publish("a/b", b"1", properties={"topic_alias": 2}))
    second = channel.handle(Publish("", b"2", properties={"topic_alias": 2}))
    assert (first.topic_name, second.topic_name, second.payload) == ("a/b", "a/b", b"2")


@pytest.mark.parametrize("alias, code", [(0, 0x94), (11, 0x94)])
def test_topic_alias_out_of_range_0x94(alias, code):
    channel = connected(settings=dataclasses.replace(SETTINGS, topic_alias_maximum=10))
    with pytest.raises(ProtocolError) as error:
        channel.handle(Publish("t", b"x", properties={"topic_alias": alias}))
    assert error.value.reason_code == code


def test_unknown_topic_alias_is_a_protocol_error():
    with pytest.raises(ProtocolError) as error:
        connected().handle(Publish("", b"x", properties={"topic_alias": 1}))
    assert error.value.reason_code == 0x82


# -- DISCONNECT and the will -------------------------------------------------------------------

def test_disconnect_drops_the_will_and_sets_the_new_expiry():
    channel = connected(5, properties={"session_expiry_interval": 60})
    decision = channel.handle(Disconnect(0, {"session_expiry_interval": 30}))
    assert decision == Disconnected(True, 30, False, "normal disconnect")
    assert channel.expiry == 30


def test_disconnect_with_will_message_keeps_the_will():
    assert connected().handle(Disconnect(0x04)).keep_will


def test_expiry_raised_on_disconnect_after_zero_MQTT_3_14_2_2():
    with pytest.raises(ProtocolError):
        connected(5).handle(Disconnect(0, {"session_expiry_interval": 10}))


@pytest.mark.parametrize("version, delay, expiry, expected", [
    (5, 10, 60, 10), (5, 100, 60, 60), (5, 10, None, 10), (4, 10, 60, 0), (5, 0, 60, 0)])
def test_will_delay_within_the_session_expiry_MQTT_3_1_3_9(version, delay, expiry, expected):
    will = Will("w", b"bye", properties={"will_delay_interval": delay} if delay else {})
    assert will_delay(will, version, expiry) == expected
