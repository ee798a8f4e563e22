"""Acknowledgements that wait for a commit: the PUBACKs of many QoS 1
PUBLISHes sent in one write (one read of the broker: one batch waiting for the
store) come back once each, in the order of the PUBLISHes, whether a message
was queued for an offline persistent subscriber (written: its PUBACK waits for
the commit) or went nowhere (nothing written: its PUBACK still waits behind
the earlier ones); and every acknowledged message is delivered afterwards.
With two workers the acknowledgements of a write wait together, for this
worker's commit and the other's answers alike."""

from __future__ import annotations

import pytest

from actormq.transport.codec import Puback, Publish
from tests.integration.brokers import actormq_only
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient
from tests.integration.test_workers import routed
from tests.integration.test_workers_core import start_node

PERSISTENT = {"session_expiry_interval": 3600}
COUNT = 300


@pytest.mark.parametrize("sync", ["on", "off"])
def test_acks_of_one_write_come_back_in_order_after_the_commit(make_broker, sync):
    actormq_only("storage.sync")
    broker = make_broker(settings={"queue.storage": "disc", "storage.sync": sync})
    subscriber_id, topic = unique("away"), unique("q")
    away = connect(broker.port, subscriber_id, clean_start=False, properties=PERSISTENT)
    away.subscribe(topic, 1)
    away.disconnect()
    publisher = RawClient(broker.port)
    publisher.connect(unique("pub"))
    # every third message goes to a topic nobody subscribed to
    packets = [Publish(topic if n % 3 else unique("nobody"), b"%06d" % n, 1, packet_id=n + 1)
               for n in range(COUNT)]
    publisher.send(*packets)
    acks = [publisher.expect(Puback, timeout=10) for _ in range(COUNT)]
    assert [ack.packet_id for ack in acks] == list(range(1, COUNT + 1))
    assert {ack.reason_code for ack in acks} <= {0x00, 0x10}    # 0x10: no matching subscribers
    back = connect(broker.port, subscriber_id, clean_start=False, properties=PERSISTENT)
    queued = [n for n in range(COUNT) if n % 3]
    assert [int(m.payload) for m in back.expect(len(queued), timeout=30)] == queued


@pytest.mark.parametrize("sync", ["on", "off"])
def test_acks_that_wait_for_another_workers_commit_come_back_in_order_and_survive_kill9(tmp_path, sync):
    """`-w 2`, the publisher on worker 1: its messages go to an offline
    persistent subscriber on worker 0 (the PUBACK waits for worker 0's
    answer), to one on its own worker (for its own commit) or nowhere, all
    in one write; the acknowledgements come back once each and in order, and
    what they acknowledged survives kill -9."""
    node = start_node(tmp_path, **{"queue.storage": "disc", "storage.sync": sync})
    try:
        other_side, publisher_side = node.ports
        far_id, near_id = unique("far"), unique("near")
        far_topic, near_topic = unique("far"), unique("near")
        for port, client_id, topic in ((other_side, far_id, far_topic), (publisher_side, near_id, near_topic)):
            away = connect(port, client_id, clean_start=False, properties=PERSISTENT)
            away.subscribe(topic, 1)
            away.disconnect()
        probe = connect(other_side, unique("probe"))
        probe.subscribe(far_topic, 1)     # routed after the far session's subscription (the bus is FIFO)
        routed(connect(publisher_side, unique("prober")), far_topic, probe)
        probe.disconnect()

        publisher = RawClient(publisher_side)
        publisher.connect(unique("pub"))
        topics = (far_topic, far_topic, near_topic, unique("nobody"))
        packets = [Publish(topics[n % 4], b"%06d" % n, 1, packet_id=n + 1) for n in range(COUNT)]
        publisher.send(*packets)
        acks = [publisher.expect(Puback, timeout=10) for _ in range(COUNT)]
        assert [ack.packet_id for ack in acks] == list(range(1, COUNT + 1))

        node.broker.kill9()
        node.broker.restart()
        for client_id, kept in ((far_id, (0, 1)), (near_id, (2,))):
            back = connect(node.broker.port, client_id, clean_start=False, properties=PERSISTENT)
            queued = [n for n in range(COUNT) if n % 4 in kept]
            assert [int(m.payload) for m in back.expect(len(queued), timeout=30)] == queued
    finally:
        node.broker.stop()
