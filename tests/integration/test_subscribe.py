"""SUBSCRIBE / UNSUBSCRIBE: granted QoS, invalid filters, wildcards, `$` topics
and overlapping subscriptions (3.1.1 and MQTT 5 subscription identifiers)."""

import pytest

from actormq.transport.codec import Publish, Suback, Subscribe, Subscription
from tests.integration.brokers import actormq_only
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_suback_grants_the_requested_qos(shared_broker, version, qos):
    client = connect(shared_broker.port, unique("sub"), version=version)
    assert client.subscribe(unique("t"), qos) == [qos]


@pytest.mark.parametrize("version", [4, 5])
def test_suback_downgrades_to_the_maximum_qos(make_broker, version):
    broker = make_broker(settings={"mqtt.max_qos": 1})
    client = connect(broker.port, unique("sub"), version=version)
    assert client.subscribe("capped/t", 2) == [1]
    publisher = connect(broker.port, unique("pub"), version=version)
    publisher.publish("capped/t", b"x", qos=1)
    assert client.expect_one().qos == 1


@pytest.mark.parametrize("bad_filter", ["a/#/b", "a/b#", "a+/b"])
def test_mqtt5_invalid_filter_gets_a_failure_code(shared_broker, bad_filter):
    actormq_only("mosquitto 2.0 closes the connection on an invalid filter")
    topic = unique("still-works")
    raw = RawClient(shared_broker.port, version=5)
    raw.connect(unique("sub"))
    raw.send(Subscribe(1, (Subscription(bad_filter, 1), Subscription(topic, 1))))
    suback = raw.expect(Suback)
    assert suback.reason_codes[0] in (0x80, 0x8F)
    assert suback.reason_codes[1] == 1
    raw.send(Publish(topic, b"alive", qos=1, packet_id=1))
    received = [raw.recv() for _ in range(2)]  # PUBACK and the message, in either order
    assert [p.payload for p in received if isinstance(p, Publish)] == [b"alive"]


def test_mqtt311_invalid_filter_is_refused_or_closes(shared_broker):
    """3.1.1 lets the server answer 0x80 or close the connection; granting it is wrong."""
    raw = RawClient(shared_broker.port, version=4)
    raw.connect(unique("sub"))
    raw.send(Subscribe(1, (Subscription("a/#/b", 1),)))
    answer = raw.recv()
    if answer is not None:
        assert isinstance(answer, Suback) and answer.reason_codes == (0x80,), answer


def test_mqtt5_unsubscribe_reports_whether_a_subscription_existed(shared_broker):
    topic = unique("t")
    client = connect(shared_broker.port, unique("unsub"))
    client.subscribe(topic, 1)
    assert client.unsubscribe(topic) == [0x00]
    assert client.unsubscribe(topic) == [0x11]


@pytest.mark.parametrize("version", [4, 5])
def test_unsubscribe_stops_delivery(shared_broker, version):
    topic = unique("t")
    client = connect(shared_broker.port, unique("unsub"), version=version)
    client.subscribe(topic, 1)
    client.publish(topic, b"before", qos=1)
    assert client.expect_one().payload == b"before"
    client.unsubscribe(topic)
    client.publish(topic, b"after", qos=1)
    client.expect_none()


@pytest.mark.parametrize("topic_filter, matches, misses", [
    ("{p}/+/c", ["{p}/b/c", "{p}//c"], ["{p}/b/x/c", "{p}/c", "{p}/b/c/d"]),
    ("{p}/#", ["{p}", "{p}/x", "{p}/x/y/z"], ["{p}x", "other/{p}"]),
    ("+/{p}", ["a/{p}", "/{p}"], ["a/b/{p}", "{p}"]),
    ("{p}/+", ["{p}/x", "{p}/"], ["{p}", "{p}/x/y"]),
])
def test_wildcards_match_as_the_spec_says(shared_broker, topic_filter, matches, misses):
    prefix = unique("w")
    client = connect(shared_broker.port, unique("wild"))
    client.subscribe(topic_filter.format(p=prefix), 0)
    for topic in misses + matches:
        client.publish(topic.format(p=prefix), topic.encode(), qos=1)
    got = [m.payload.decode() for m in client.expect(len(matches))]
    assert got == matches
    client.expect_none(0.3)


def test_dollar_topics_are_not_matched_by_leading_wildcards(make_broker):
    broker = make_broker(settings={"sys_interval": 1})
    everything = connect(broker.port, unique("all"))
    everything.subscribe("#", 0)
    plus = connect(broker.port, unique("plus"))
    plus.subscribe("+/broker/#", 0)
    control = connect(broker.port, unique("sys"))
    control.subscribe("$SYS/#", 0)
    control.expect(2, timeout=5)
    uptimes = [m for m in control.collect(2.5) if m.topic == "$SYS/broker/uptime"]
    assert uptimes, "no $SYS round while everyone listened"
    everything.expect_none(0.1)
    plus.expect_none(0.1)


def test_mqtt311_overlapping_subscriptions_deliver_once_at_the_highest_qos(shared_broker):
    """[MQTT-3.3.5-1] asks for the highest QoS; copies per subscription are allowed,
    actormq sends one."""
    actormq_only("mosquitto 2.0 uses the first subscription's QoS (eclipse-mosquitto/mosquitto#3319)")
    prefix = unique("o")
    client = connect(shared_broker.port, unique("overlap"), version=4)
    client.subscribe(f"{prefix}/+", 0)
    client.subscribe(f"{prefix}/#", 2)
    client.subscribe(f"{prefix}/x", 1)
    connect(shared_broker.port, unique("pub"), version=4).publish(f"{prefix}/x", b"once", qos=2)
    copies = client.expect(1) + client.drain()
    assert [(m.payload, m.qos) for m in copies] == [(b"once", 2)]


def _subscribe_overlapping_with_ids(port):
    prefix = unique("o")
    client = connect(port, unique("ids"))
    client.subscribe(f"{prefix}/+", 1, subscription_identifier=7)
    client.subscribe(f"{prefix}/#", 1, subscription_identifier=300)
    client.subscribe(f"{prefix}/x/#", 1)  # matches too, has no identifier
    client.publish(f"{prefix}/x", b"ids", qos=1)
    return client.expect(1) + client.drain()


def test_mqtt5_subscription_identifiers_of_all_matching_subscriptions(shared_broker):
    """[MQTT-3.3.4-3..5]: one copy carries every identifier, or each copy its own."""
    copies = _subscribe_overlapping_with_ids(shared_broker.port)
    ids = sorted(i for m in copies for i in m.properties.get("subscription_identifier", []))
    assert ids == [7, 300]
    assert all(len(m.properties.get("subscription_identifier", [])) <= 2 for m in copies)


def test_mqtt5_single_copy_carries_all_subscription_identifiers(shared_broker):
    actormq_only("mosquitto sends one copy per matching subscription (the spec allows both)")
    copies = _subscribe_overlapping_with_ids(shared_broker.port)
    assert len(copies) == 1
    assert sorted(copies[0].properties["subscription_identifier"]) == [7, 300]
