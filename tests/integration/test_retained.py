"""Retained messages: store, replace, delete, delivery on subscribe, and the MQTT 5
retain handling (0/1/2) and retain-as-published subscription options."""

import pytest

from tests.integration.clients import connect, unique

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def topic(shared_broker):
    name = unique("r")
    yield name
    connect(shared_broker.port, unique("cleanup")).publish(name, b"", qos=1, retain=True)


def retained_for(port, topic_filter, version=5, qos=1, **options):
    client = connect(port, unique("late"), version=version)
    client.subscribe(topic_filter, qos, **options)
    return client.drain(quiet=0.4)


@pytest.mark.parametrize("version", [4, 5])
def test_retained_message_is_sent_on_subscribe_with_the_retain_flag(shared_broker, topic, version):
    publisher = connect(shared_broker.port, unique("pub"), version=version)
    publisher.publish(topic, b"stored", qos=1, retain=True)
    [message] = retained_for(shared_broker.port, topic, version)
    assert (message.topic, message.payload, message.retain) == (topic, b"stored", True)


def test_retained_message_is_replaced(shared_broker, topic):
    publisher = connect(shared_broker.port, unique("pub"))
    publisher.publish(topic, b"old", qos=1, retain=True)
    publisher.publish(topic, b"new", qos=1, retain=True)
    assert [m.payload for m in retained_for(shared_broker.port, topic)] == [b"new"]


def test_empty_retained_payload_deletes_the_retained_message(shared_broker, topic):
    publisher = connect(shared_broker.port, unique("pub"))
    publisher.publish(topic, b"doomed", qos=1, retain=True)
    publisher.publish(topic, b"", qos=1, retain=True)
    assert retained_for(shared_broker.port, topic) == []


def test_retained_message_qos_is_the_lower_of_message_and_subscription(shared_broker, topic):
    connect(shared_broker.port, unique("pub")).publish(topic, b"q2", qos=2, retain=True)
    [message] = retained_for(shared_broker.port, topic, qos=1)
    assert message.qos == 1


def test_wildcard_subscription_gets_every_matching_retained_message(shared_broker):
    prefix = unique("rw")
    publisher = connect(shared_broker.port, unique("pub"))
    for leaf in ("a", "b", "c/d"):
        publisher.publish(f"{prefix}/{leaf}", leaf.encode(), qos=1, retain=True)
    try:
        got = retained_for(shared_broker.port, f"{prefix}/#")
        assert sorted(m.payload for m in got) == [b"a", b"b", b"c/d"]
        assert all(m.retain for m in got)
    finally:
        for leaf in ("a", "b", "c/d"):
            publisher.publish(f"{prefix}/{leaf}", b"", qos=1, retain=True)


@pytest.mark.parametrize("version", [4, 5])
def test_live_retained_publish_reaches_existing_subscribers_without_the_flag(shared_broker, topic,
                                                                             version):
    subscriber = connect(shared_broker.port, unique("sub"), version=version)
    subscriber.subscribe(topic, 1)
    connect(shared_broker.port, unique("pub")).publish(topic, b"live", qos=1, retain=True)
    message = subscriber.expect_one()
    assert (message.payload, message.retain) == (b"live", False)


@pytest.mark.parametrize("handling, first, again", [(0, 1, 1), (1, 1, 0), (2, 0, 0)])
def test_mqtt5_retain_handling(shared_broker, topic, handling, first, again):
    """0: send on every subscribe; 1: only when the subscription is new; 2: never."""
    connect(shared_broker.port, unique("pub")).publish(topic, b"kept", qos=1, retain=True)
    client = connect(shared_broker.port, unique("rh"))
    client.subscribe(topic, 1, retain_handling=handling)
    assert len(client.drain(quiet=0.4)) == first
    client.subscribe(topic, 1, retain_handling=handling)
    assert len(client.drain(quiet=0.4)) == again


@pytest.mark.parametrize("as_published", [False, True])
def test_mqtt5_retain_as_published(shared_broker, topic, as_published):
    subscriber = connect(shared_broker.port, unique("rap"))
    subscriber.subscribe(topic, 1, retain_as_published=as_published)
    publisher = connect(shared_broker.port, unique("pub"))
    publisher.publish(topic, b"retained", qos=1, retain=True)
    publisher.publish(topic, b"plain", qos=1, retain=False)
    flags = [(m.payload, m.retain) for m in subscriber.expect(2)]
    assert flags == [(b"retained", as_published), (b"plain", False)]
