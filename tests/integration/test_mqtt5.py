"""MQTT 5 features: topic aliases, message expiry, no-local, property pass-through,
receive maximum, maximum packet size, problem information and session expiry."""

import time

import pytest

from actormq.transport.codec import (
    Puback, Publish, Pubrec, Suback, Subscribe, Subscription, Unsuback, Unsubscribe,
)
from tests.integration.brokers import actormq_only
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)
PERSISTENT = {"session_expiry_interval": 300}


def publish_from(port, topic, payloads, qos=1, properties=None):
    publisher = connect(port, unique("pub"))
    for payload in payloads:
        publisher.publish(topic, payload, qos=qos, properties=properties)
    return publisher


# -- topic aliases -----------------------------------------------------------------

def test_client_to_broker_topic_alias(shared_broker):
    topic = unique("alias")
    subscriber = connect(shared_broker.port, unique("sub"))
    subscriber.subscribe(topic, 1)
    raw = RawClient(shared_broker.port)
    assert raw.connect(unique("aliaser")).properties.get("topic_alias_maximum", 0) >= 1
    raw.send(Publish(topic, b"named", qos=1, packet_id=1, properties={"topic_alias": 1}))
    raw.expect(Puback)
    raw.send(Publish("", b"aliased", qos=1, packet_id=2, properties={"topic_alias": 1}))
    raw.expect(Puback)
    assert [(m.topic, m.payload) for m in subscriber.expect(2)] == \
        [(topic, b"named"), (topic, b"aliased")]


def test_topic_alias_above_the_server_maximum_is_refused_with_0x94(make_broker):
    broker = make_broker(settings={"mqtt.topic_alias_maximum": 10})
    raw = RawClient(broker.port)
    assert raw.connect(unique("aliaser")).properties.get("topic_alias_maximum") == 10
    raw.send(Publish(unique("t"), b"x", properties={"topic_alias": 11}))
    raw.expect_disconnect(0x94)


def test_broker_to_client_topic_alias(shared_broker):
    actormq_only("mosquitto 2.0 never sends topic aliases")
    topic = unique("alias")
    raw = RawClient(shared_broker.port)
    raw.connect(unique("sub"), properties={"topic_alias_maximum": 4})
    raw.subscribe(topic, 0)
    publish_from(shared_broker.port, topic, [b"1", b"2", b"3"], qos=0)
    first, *later = raw.expect_publishes(3)
    alias = first.properties.get("topic_alias")
    assert first.topic_name == topic and 1 <= (alias or 0) <= 4, first
    for message in later:
        assert (message.topic_name, message.properties.get("topic_alias")) == ("", alias), message


def test_no_topic_alias_to_a_client_that_did_not_ask(shared_broker):
    topic = unique("alias")
    raw = RawClient(shared_broker.port)
    raw.connect(unique("sub"))
    raw.subscribe(topic, 0)
    publish_from(shared_broker.port, topic, [b"1", b"2"], qos=0)
    for message in raw.expect_publishes(2):
        assert message.topic_name == topic and "topic_alias" not in message.properties


# -- message expiry ----------------------------------------------------------------------

def test_message_expiry_in_an_offline_session(shared_broker):
    client_id, topic = unique("away"), unique("t")
    client = connect(shared_broker.port, client_id, clean_start=False, properties=PERSISTENT)
    client.subscribe(topic, 1)
    client.disconnect()
    publisher = connect(shared_broker.port, unique("pub"))
    publisher.publish(topic, b"short", qos=1, properties={"message_expiry_interval": 1})
    publisher.publish(topic, b"long", qos=1, properties={"message_expiry_interval": 10})
    time.sleep(2.1)
    back = connect(shared_broker.port, client_id, clean_start=False, properties=PERSISTENT)
    [message] = back.drain(quiet=0.5)
    assert message.payload == b"long"
    assert 1 <= message.properties["message_expiry_interval"] <= 9


def test_message_expiry_is_forwarded_to_online_subscribers(shared_broker):
    topic = unique("t")
    subscriber = connect(shared_broker.port, unique("sub"))
    subscriber.subscribe(topic, 1)
    publish_from(shared_broker.port, topic, [b"x"], properties={"message_expiry_interval": 60})
    assert 1 <= subscriber.expect_one().properties["message_expiry_interval"] <= 60


# -- no-local, property pass-through --------------------------------------------------

def test_no_local_does_not_echo_own_messages(shared_broker):
    topic = unique("t")
    client = connect(shared_broker.port, unique("self"))
    client.subscribe(topic, 1, no_local=True)
    client.publish(topic, b"mine", qos=1)
    publish_from(shared_broker.port, topic, [b"theirs"])
    assert [m.payload for m in client.drain()] == [b"theirs"]


def test_application_properties_pass_through_unchanged(shared_broker):
    topic = unique("t")
    props = {"user_property": [("k", "1"), ("k", "2"), ("a", "ü")],
             "response_topic": "reply/here", "correlation_data": b"\x00\x01\xff",
             "content_type": "application/json", "payload_format_indicator": 1}
    subscriber = connect(shared_broker.port, unique("sub"))
    subscriber.subscribe(topic, 1)
    publish_from(shared_broker.port, topic, [b'{"a": 1}'], properties=props)
    assert subscriber.expect_one().properties == props


# -- receive maximum --------------------------------------------------------------------

def test_broker_respects_the_client_receive_maximum(shared_broker):
    topic = unique("t")
    raw = RawClient(shared_broker.port)
    raw.connect(unique("slow"), properties={"receive_maximum": 3})
    raw.subscribe(topic, 1)
    publish_from(shared_broker.port, topic, [str(i).encode() for i in range(10)])
    window = raw.expect_publishes(3)
    raw.expect_nothing(0.5)
    actormq_only("mosquitto 2.0.11 refills the whole window after one PUBACK")
    raw.send(Puback(window[0].packet_id))
    assert raw.expect(Publish).payload == b"3"
    raw.expect_nothing(0.3)


def test_exceeding_the_server_receive_maximum_is_refused_with_0x93(make_broker):
    broker = make_broker(settings={"mqtt.receive_maximum": 2})
    raw = RawClient(broker.port)
    assert raw.connect(unique("eager")).properties.get("receive_maximum") == 2
    actormq_only("mosquitto 2.0 answers PUBREC 0x97 instead of DISCONNECT 0x93")
    topic = unique("t")
    for packet_id in (1, 2):
        raw.send(Publish(topic, b"x", qos=2, packet_id=packet_id))
        raw.expect(Pubrec)
    raw.send(Publish(topic, b"x", qos=2, packet_id=3))
    raw.expect_disconnect(0x93)


# -- maximum packet size ---------------------------------------------------------------

def test_broker_does_not_send_packets_above_the_client_maximum(shared_broker):
    topic = unique("t")
    subscriber = connect(shared_broker.port, unique("small"), properties={"maximum_packet_size": 256})
    subscriber.subscribe(topic, 1)
    publish_from(shared_broker.port, topic, [b"a" * 50, b"b" * 1000, b"c" * 50])
    assert [m.payload[:1] for m in subscriber.drain()] == [b"a", b"c"]
    assert not subscriber.closed.is_set()


def test_packet_above_the_broker_maximum_is_refused_with_0x95(make_broker):
    broker = make_broker(settings={"mqtt.max_packet_size": "1KB"})
    raw = RawClient(broker.port)
    assert raw.connect(unique("big")).properties.get("maximum_packet_size") == 1024
    raw.send(Publish(unique("t"), b"x" * 2000))
    raw.expect_disconnect(0x95)


# -- problem information ------------------------------------------------------------------

NO_PROBLEM_INFORMATION = {"request_problem_information": 0}


def _problem_client(port, properties):
    raw = RawClient(port)
    raw.connect(unique("problems"), properties=properties)
    return raw


def _unknown_unsubscribe(port, properties) -> Unsuback:
    raw = _problem_client(port, properties)
    raw.send(Unsubscribe(1, (unique("never"),)))
    return raw.expect(Unsuback)


def _bad_filter_subscribe(port, properties) -> Suback:
    actormq_only("mosquitto 2.0 closes the connection on an invalid filter")
    raw = _problem_client(port, properties)
    raw.send(Subscribe(1, (Subscription("a/#/b", 1),)))
    return raw.expect(Suback)


def test_unsuback_without_reason_string_when_problem_information_is_off(shared_broker):
    unsuback = _unknown_unsubscribe(shared_broker.port, NO_PROBLEM_INFORMATION)
    assert unsuback.reason_codes == (0x11,)
    assert not {"reason_string", "user_property"} & unsuback.properties.keys(), unsuback


def test_suback_failure_without_reason_string_when_problem_information_is_off(shared_broker):
    suback = _bad_filter_subscribe(shared_broker.port, NO_PROBLEM_INFORMATION)
    assert suback.reason_codes[0] >= 0x80
    assert not {"reason_string", "user_property"} & suback.properties.keys(), suback


def test_suback_failure_with_reason_string_by_default(shared_broker):
    suback = _bad_filter_subscribe(shared_broker.port, {})
    assert suback.reason_codes[0] >= 0x80
    assert suback.properties.get("reason_string"), suback


def test_disconnect_carries_a_reason_string_by_default(shared_broker):
    actormq_only("mosquitto 2.0 sends no reason strings")
    raw = RawClient(shared_broker.port)
    raw.connect(unique("bad"))
    raw.send(Publish("", b"x"))  # no topic and no alias
    disconnect = raw.expect_closed()[-1]
    assert disconnect.reason_code >= 0x80 and disconnect.properties.get("reason_string")


# -- session expiry ----------------------------------------------------------------------

def test_session_expires_after_its_interval(shared_broker):
    client_id = unique("brief")
    client = connect(shared_broker.port, client_id, clean_start=False,
                     properties={"session_expiry_interval": 1})
    client.subscribe(unique("t"), 1)
    client.disconnect()
    time.sleep(2.1)
    back = connect(shared_broker.port, client_id, clean_start=False, properties=PERSISTENT)
    assert not back.connack.session_present


def test_session_is_kept_within_its_interval(shared_broker):
    client_id = unique("brief")
    client = connect(shared_broker.port, client_id, clean_start=False,
                     properties={"session_expiry_interval": 5})
    client.subscribe(unique("t"), 1)
    client.disconnect()
    back = connect(shared_broker.port, client_id, clean_start=False, properties=PERSISTENT)
    assert back.connack.session_present
