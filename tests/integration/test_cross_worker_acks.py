"""Acknowledgements that wait for another worker (`actormq run -w 2`, disc
queues) wait together per read (see test_durable_acks for their order and
kill -9). When that worker refuses some of them (its store is full), only
those are refused (MQTT 5: 0x97); the others of the same read are
acknowledged. An MQTT 3.1.1 publisher gets the PUBACKs
before the first refused message, then the connection closes."""

from __future__ import annotations

import pytest

from actormq.transport.codec import Puback, Publish
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient
from tests.integration.test_storage_limits import (PAYLOAD, QUOTA_EXCEEDED, TINY_STORE, fill,
                                                  go_offline, numbered)
from tests.integration.test_workers_core import start_node

pytestmark = pytest.mark.timeout(120)
NO_MATCHING_SUBSCRIBERS = 0x10


@pytest.fixture
def full_node(tmp_path):
    """Worker 0 holds the offline queue that filled a 1 MB store; the publisher
    that filled it is on worker 1."""
    started = start_node(tmp_path, **TINY_STORE, **{"queue.storage": "disc"})
    subscriber_side, publisher_side = started.ports
    topic = unique("full")
    go_offline(subscriber_side, unique("offline"), topic)
    filler = RawClient(publisher_side)
    filler.connect(unique("filler"))
    accepted, _ = fill(filler, topic)
    assert len(accepted) > 100, "a 1 MB store holds a few hundred 1 kB messages"
    yield started, topic
    started.broker.stop()


def test_only_the_messages_another_worker_refused_are_refused(full_node):
    node, full_topic = full_node
    subscriber_side, publisher_side = node.ports
    live_topic = unique("live")
    live = connect(subscriber_side, unique("live"))
    live.subscribe(live_topic, 1)
    publisher = RawClient(publisher_side)
    publisher.connect(unique("pub"))
    topics = [full_topic, unique("nobody"), live_topic, full_topic, live_topic]
    publisher.send(*(Publish(topic, numbered(n), 1, packet_id=n + 1) for n, topic in enumerate(topics)))
    acks = [publisher.expect(Puback, timeout=10) for _ in topics]
    assert [(ack.packet_id, ack.reason_code) for ack in acks] == \
        [(1, QUOTA_EXCEEDED), (2, NO_MATCHING_SUBSCRIBERS), (3, 0), (4, QUOTA_EXCEEDED), (5, 0)]
    assert sorted(m.payload[:6] for m in live.expect(2)) == [b"000002", b"000004"]


def test_a_mqtt311_publisher_is_closed_at_the_first_refused_message(full_node):
    node, full_topic = full_node
    _, publisher_side = node.ports
    publisher = RawClient(publisher_side, version=4)
    publisher.connect(unique("pub311"))
    publisher.send(Publish(unique("nobody"), b"x" * PAYLOAD, 1, packet_id=1),
                   Publish(full_topic, numbered(1), 1, packet_id=2),
                   Publish(unique("nobody"), b"x" * PAYLOAD, 1, packet_id=3))
    packets = publisher.expect_closed(timeout=5)
    assert [p.packet_id for p in packets if isinstance(p, Puback)] == [1], \
        "the message before the refused one is acknowledged, the refused one and those after it are not"
