"""One worker's core (Connection, Session, Router, Broker) driven in-process
without sockets (`core_harness`): every CONNACK return code of 3.1.1 and the
CONNACK reason codes of 5.0 the core gives (golden bytes written here),
SUBSCRIBE, PUBLISH QoS 0/1/2, takeover, will and will delay, keepalive and
topic aliases."""

from __future__ import annotations

import pytest

from actormq.transport.codec import (Connack, Connect, Disconnect, Puback, Pubcomp, Publish, Pubrec,
                                     Pubrel, Suback, Subscribe, Subscription, Will)
from tests.unit.core_harness import Core


@pytest.fixture
def core():
    started = Core()
    yield started
    started.close()


def utf8(text: str) -> bytes:
    return len(text).to_bytes(2, "big") + text.encode()


def connect_bytes(level: int, client_id: str, flags: int = 0x02, props: bytes = b"\x00",
                  name: str = "MQTT") -> bytes:
    body = utf8(name) + bytes((level, flags)) + b"\x00\x3c" + (props if level == 5 else b"")
    body += utf8(client_id)
    return b"\x10" + bytes((len(body),)) + body


# -- CONNECT: 3.1.1 return codes ---------------------------------------------------------

def test_v311_accepted(core):
    client = core.client(4)
    client.send_bytes(connect_bytes(4, "c"))
    assert client.raw() == b"\x20\x02\x00\x00"


def test_v311_unacceptable_protocol_version_1(core):
    client = core.client(4)
    client.send_bytes(connect_bytes(6, "c"))
    assert client.raw() == b"\x20\x02\x00\x01"
    assert client.wire.closed or client.wire.eof_written


def test_v311_identifier_rejected_2(core):
    client = core.client(4)
    client.send_bytes(connect_bytes(4, "", flags=0x00))    # empty id, persistent session
    assert client.raw() == b"\x20\x02\x00\x02"


@pytest.mark.parametrize("refusal, return_code", [(0x88, 3), (0x89, 3), (0x86, 4), (0x87, 5), (0x8A, 5)])
def test_v311_authentication_refusals(core, refusal, return_code):
    core.broker.authenticate = lambda connect, peer: refusal     # what an auth provider answers
    client = core.client(4)
    client.send_bytes(connect_bytes(4, "c"))
    assert client.raw() == bytes((0x20, 0x02, 0x00, return_code))


def test_v311_anonymous_not_allowed_5():
    core = Core(**{"mqtt.allow_anonymous": "false"})
    client = core.client(4)
    client.send_bytes(connect_bytes(4, "c"))
    assert client.raw() == b"\x20\x02\x00\x05"
    core.close()


# -- CONNECT: 5.0 reason codes ----------------------------------------------------------------

def v5_refusal(client) -> int:
    data = client.raw()
    assert data[0] == 0x20 and data[2] == 0x00, data     # CONNACK, session present 0
    return data[3]


@pytest.mark.parametrize("name, data, code", [
    ("malformed: a reserved flag", connect_bytes(5, "c", flags=0x03), 0x81),
    ("protocol error: receive maximum 0", connect_bytes(5, "c", props=b"\x03\x21\x00\x00"), 0x82),
    ("client id not valid", connect_bytes(5, "x" * 40), 0x85),
    ("bad authentication method", connect_bytes(5, "c", props=b"\x05\x15\x00\x02ab"), 0x8C),
])
def test_v5_refusals_of_the_connect_itself(name, data, code):
    core = Core(**{"mqtt.max_client_id_len": "23"})
    client = core.client(5)
    client.send_bytes(data)
    assert v5_refusal(client) == code
    core.close()


@pytest.mark.parametrize("will, setting, code", [
    (Will("a/+", b"x"), {}, 0x90),
    (Will("a", b"x", retain=True), {"mqtt.retain_available": "false"}, 0x9A),
    (Will("a", b"x", qos=2), {"mqtt.max_qos": "1"}, 0x9B),
])
def test_v5_will_refusals(will, setting, code):
    core = Core(**setting)
    client = core.client(5)
    client.send(Connect("c", protocol_level=5, will=will))
    assert v5_refusal(client) == code
    core.close()


@pytest.mark.parametrize("refusal", [0x86, 0x87, 0x88, 0x89, 0x8A])
def test_v5_authentication_refusals(core, refusal):
    core.broker.authenticate = lambda connect, peer: refusal
    client = core.client(5)
    client.send(Connect("c", protocol_level=5))
    assert v5_refusal(client) == refusal


def test_v5_accepted_with_an_assigned_client_id(core):
    connack = core.client(5).connect("")
    assert isinstance(connack, Connack) and connack.reason_code == 0
    assert connack.properties["assigned_client_identifier"].startswith("auto-")


# -- SUBSCRIBE and PUBLISH ------------------------------------------------------------------

def subscribed(core, topic_filter: str, qos: int, version: int = 5, **props):
    client = core.client(version)
    client.connect(f"sub-{topic_filter}", properties=props) if version == 5 else client.connect("sub")
    client.send(Subscribe(1, (Subscription(topic_filter, qos),)))
    assert client.received() == [Suback(1, (qos,))]
    return client


def test_subscribe_grants_at_most_the_server_maximum():
    core = Core(**{"mqtt.max_qos": "1"})
    client = core.client(5)
    client.connect("s")
    client.send(Subscribe(1, (Subscription("a", 2), Subscription("b/#", 0))))
    assert client.received() == [Suback(1, (1, 0))]
    core.close()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_each_qos(core, qos):
    subscriber = subscribed(core, "t/#", 2)
    publisher = core.client(5)
    publisher.connect("pub")
    publisher.send(Publish("t/1", b"hello", qos, packet_id=7 if qos else None))
    acks = publisher.received()
    assert acks == ([] if qos == 0 else [Puback(7)] if qos == 1 else [Pubrec(7)])
    if qos == 2:
        publisher.send(Pubrel(7))
        assert publisher.received() == [Pubcomp(7)]
    [message] = subscriber.received()
    assert (message.topic_name, message.payload, message.qos) == ("t/1", b"hello", qos)


def test_qos2_duplicate_is_routed_once(core):
    subscriber = subscribed(core, "d", 2)
    publisher = core.client(5)
    publisher.connect("pub")
    publisher.send(Publish("d", b"once", 2, packet_id=3))
    publisher.send(Publish("d", b"once", 2, dup=True, packet_id=3))
    assert publisher.received() == [Pubrec(3), Pubrec(3)]
    assert len(subscriber.received()) == 1


def test_publish_without_subscribers_says_so_in_5(core):
    publisher = core.client(5)
    publisher.connect("pub")
    publisher.send(Publish("nobody", b"x", 1, packet_id=1))
    assert publisher.received() == [Puback(1, 0x10)]


# -- takeover, will, will delay ----------------------------------------------------------------

def test_takeover_closes_the_old_connection_with_0x8e(core):
    old = core.client(5)
    old.connect("same", properties={"session_expiry_interval": 60})
    new = core.client(5)
    connack = new.connect("same", clean_start=False, properties={"session_expiry_interval": 60})
    assert connack.session_present
    assert old.received()[-1] == Disconnect(0x8E, {"reason_string":
                                                   "another connection took over the session"})


def test_will_published_when_the_connection_drops(core):
    subscriber = subscribed(core, "w", 1)
    dying = core.client(5)
    dying.connect("dying", will=Will("w", b"bye", qos=1))
    dying.drop()
    [message] = subscriber.received()
    assert (message.topic_name, message.payload) == ("w", b"bye")


def test_no_will_after_a_normal_disconnect(core):
    subscriber = subscribed(core, "w", 1)
    polite = core.client(5)
    polite.connect("polite", will=Will("w", b"bye"))
    polite.send(Disconnect(0))
    polite.drop()
    assert subscriber.received() == []


def test_will_delay_then_will(core):
    subscriber = subscribed(core, "w", 1)
    dying = core.client(5)
    dying.connect("dying", properties={"session_expiry_interval": 60},
                  will=Will("w", b"late", properties={"will_delay_interval": 1}))
    dying.drop()
    assert subscriber.received() == []
    core.settle(1.05)
    assert [m.payload for m in subscriber.received()] == [b"late"]


def test_reconnect_within_the_will_delay_cancels_the_will(core):
    subscriber = subscribed(core, "w", 1)
    props = {"session_expiry_interval": 60}
    dying = core.client(5)
    dying.connect("back", properties=props, will=Will("w", b"late", properties={"will_delay_interval": 1}))
    dying.drop()
    core.client(5).connect("back", clean_start=False, properties=props)
    core.settle(1.05)
    assert subscriber.received() == []


# -- keepalive -------------------------------------------------------------------------

def test_keepalive_is_one_and_a_half_times_the_granted_interval():
    core = Core(**{"mqtt.max_keepalive": "10"})
    client = core.client(5)
    connack = client.connect("k", keepalive=60)
    assert connack.properties["server_keep_alive"] == 10
    assert client.conn.keepalive_deadline == 15
    client.conn.keepalive_expired()         # what the broker's sweep calls past the deadline
    core.settle()
    assert client.received() == [Disconnect(0x8D, {"reason_string": "keepalive timeout"})]
    core.close()


def test_no_connect_in_time_closes_silently(core):
    client = core.client(5)
    assert client.conn.keepalive_deadline == core.broker.settings.connect_timeout
    client.conn.keepalive_expired()
    assert client.raw() == b"" and client.wire.closed


# -- topic aliases ------------------------------------------------------------------------

def test_topic_aliases_in_and_out(core):
    subscriber = subscribed(core, "long/topic", 0, topic_alias_maximum=1)
    publisher = core.client(5)
    publisher.connect("pub")
    publisher.send(Publish("long/topic", b"1", properties={"topic_alias": 4}),
                   Publish("", b"2", properties={"topic_alias": 4}))
    first, second = subscriber.received()
    assert (first.topic_name, first.properties["topic_alias"]) == ("long/topic", 1)
    assert (second.topic_name, second.properties["topic_alias"], second.payload) == ("", 1, b"2")


def test_unknown_topic_alias_is_a_protocol_error(core):
    publisher = core.client(5)
    publisher.connect("pub")
    publisher.send(Publish("", b"x", properties={"topic_alias": 2}))
    assert publisher.received() == [Disconnect(0x82, {"reason_string": "unknown topic alias 2"})]
