"""Acknowledgements that wait for a commit: the PUBACKs of many QoS 1
PUBLISHes sent in one write (one read of the broker: one batch waiting for the
store) come back once each, in the order of the PUBLISHes, whether a message
was queued for an offline persistent subscriber (written: its PUBACK waits for
the commit) or went nowhere (nothing written: its PUBACK still waits behind
the earlier ones); and every acknowledged message is delivered afterwards."""

from __future__ import annotations

import pytest

from actormq.transport.codec import Puback, Publish
from tests.integration.brokers import actormq_only
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

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
