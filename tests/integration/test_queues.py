"""Offline queue limits and order, the in-flight window, and the dropped-messages
counter in $SYS."""

import time

import pytest

from actormq.transport.codec import Puback
from tests.integration.brokers import actormq_only, sys_topic
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)
PERSISTENT = {"session_expiry_interval": 300}


def go_offline(port, client_id, topic):
    client = connect(port, client_id, clean_start=False, properties=PERSISTENT)
    client.subscribe(topic, 1)
    client.disconnect()


def publish_numbers(port, topic, count):
    publisher = connect(port, unique("pub"))
    for i in range(count):
        publisher.publish(topic, str(i).encode(), qos=1)


def come_back(port, client_id):
    client = connect(port, client_id, clean_start=False, properties=PERSISTENT)
    assert client.connack.session_present
    return [int(m.payload) for m in client.drain(quiet=0.5)]


def queued_after_15(broker):
    client_id, topic = unique("away"), unique("q")
    go_offline(broker.port, client_id, topic)
    publish_numbers(broker.port, topic, 15)
    return come_back(broker.port, client_id)


def test_offline_queue_keeps_the_first_messages_up_to_its_limit(make_broker):
    broker = make_broker(settings={"queue.max_offline_messages": 10})
    assert queued_after_15(broker) == list(range(10))


def test_offline_queue_dropping_the_oldest(make_broker):
    broker = make_broker(settings={"queue.max_offline_messages": 10, "queue.drop": "oldest"})
    assert queued_after_15(broker) == list(range(5, 15))


def test_lifo_queue_delivers_the_newest_first(make_broker):
    broker = make_broker(settings={"queue.type": "lifo"})
    client_id, topic = unique("away"), unique("q")
    go_offline(broker.port, client_id, topic)
    publish_numbers(broker.port, topic, 5)
    assert come_back(broker.port, client_id) == [4, 3, 2, 1, 0]


@pytest.mark.parametrize("version", [4, 5])
def test_max_inflight_limits_unacknowledged_messages(make_broker, version):
    broker = make_broker(settings={"queue.max_inflight": 3})
    topic = unique("q")
    raw = RawClient(broker.port, version=version)
    raw.connect(unique("slow"))
    raw.subscribe(topic, 1)
    publish_numbers(broker.port, topic, 8)
    window = raw.expect_publishes(3)
    assert [p.payload for p in window] == [b"0", b"1", b"2"]
    raw.expect_nothing(0.5)
    actormq_only("mosquitto 2.0.11 sends a whole window more after each PUBACK")
    for packet in window:
        raw.send(Puback(packet.packet_id))
    rest = raw.expect_publishes(3)
    assert [p.payload for p in rest] == [b"3", b"4", b"5"]
    raw.expect_nothing(0.5)


def latest_number(client, topic, timeout=5.0) -> int:
    """The value of the newest message on `topic` that arrives within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = client.expect_one(timeout=max(deadline - time.monotonic(), 0.01))
        if message.topic == topic:
            return int(float(message.payload.split()[0]))
    raise AssertionError(f"nothing on {topic}")


def test_dropped_messages_are_counted_in_sys(make_broker):
    broker = make_broker(settings={"sys_interval": 1, "queue.max_offline_messages": 2})
    dropped = sys_topic("$SYS/broker/messages/dropped")
    watcher = connect(broker.port, unique("watch"))
    watcher.subscribe(dropped, 0)
    before = latest_number(watcher, dropped)
    client_id, topic = unique("away"), unique("q")
    go_offline(broker.port, client_id, topic)
    publish_numbers(broker.port, topic, 5)
    deadline = time.monotonic() + 5
    while (now := latest_number(watcher, dropped)) < before + 3:
        assert time.monotonic() < deadline, f"dropped stayed at {now} (was {before})"
