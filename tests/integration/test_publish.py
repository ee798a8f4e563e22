"""PUBLISH at QoS 0/1/2 in both directions, QoS downgrade, QoS 2 exactly-once,
in-flight resend with DUP after reconnect, and per-topic order."""

import pytest

from actormq.transport.codec import Puback, Publish
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("pub_qos", [0, 1, 2])
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_message_is_delivered_at_the_lower_of_publish_and_subscription_qos(
        shared_broker, version, pub_qos, sub_qos):
    topic = unique("q")
    subscriber = connect(shared_broker.port, unique("sub"), version=version)
    subscriber.subscribe(topic, sub_qos)
    publisher = connect(shared_broker.port, unique("pub"), version=version)
    publisher.publish(topic, b"payload", qos=pub_qos)  # waits for PUBACK / PUBCOMP
    message = subscriber.expect_one()
    assert (message.topic, message.payload, message.qos) == (topic, b"payload", min(pub_qos, sub_qos))
    subscriber.expect_none(0.2)


def test_mqtt5_publish_above_maximum_qos_is_refused_with_0x9b(make_broker):
    broker = make_broker(settings={"mqtt.max_qos": 1})
    raw = RawClient(broker.port, version=5)
    raw.connect(unique("too-high"))
    raw.send(Publish(unique("t"), b"x", qos=2, packet_id=1))
    raw.expect_disconnect(0x9B)


@pytest.mark.parametrize("version", [4, 5])
def test_qos2_duplicate_publish_before_pubrel_is_delivered_once(shared_broker, version):
    topic = unique("once")
    subscriber = connect(shared_broker.port, unique("sub"))
    subscriber.subscribe(topic, 2)
    raw = RawClient(shared_broker.port, version=version)
    raw.connect(unique("pub"))

    raw.publish_qos2(topic, b"first", 7, duplicate=True)
    assert subscriber.expect_one().payload == b"first"
    subscriber.expect_none(0.5)

    raw.publish_qos2(topic, b"second", 7)
    assert subscriber.expect_one().payload == b"second"
    subscriber.expect_none(0.3)


@pytest.mark.parametrize("version", [4, 5])
def test_unacknowledged_qos1_is_resent_with_dup_on_reconnect(shared_broker, version):
    client_id, topic = unique("resend"), unique("t")
    session = {"session_expiry_interval": 300} if version == 5 else None
    raw = RawClient(shared_broker.port, version=version)
    raw.connect(client_id, clean_start=False, properties=session)
    raw.subscribe(topic, 1)
    connect(shared_broker.port, unique("pub")).publish(topic, b"ack me", qos=1)
    first = raw.expect(Publish)
    assert (first.payload, first.qos, first.dup) == (b"ack me", 1, False)
    raw.close()  # without PUBACK

    again = RawClient(shared_broker.port, version=version)
    assert again.connect(client_id, clean_start=False, properties=session).session_present
    resent = again.expect(Publish)
    assert (resent.payload, resent.packet_id, resent.dup) == (b"ack me", first.packet_id, True)
    again.send(Puback(resent.packet_id))
    again.expect_nothing(0.5)


def test_qos1_order_is_kept_per_topic(shared_broker):
    topic, count = unique("order"), 1000
    subscriber = connect(shared_broker.port, unique("sub"))
    subscriber.subscribe(topic, 1)
    publisher = connect(shared_broker.port, unique("pub"))
    sent = [publisher.publish(topic, str(i).encode(), qos=1, wait=False) for i in range(count)]
    for info in sent:
        publisher.wait_published(info, timeout=30)
    received = [int(m.payload) for m in subscriber.expect(count, timeout=30)]
    assert received == list(range(count))
