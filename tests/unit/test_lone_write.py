"""A lone message on a quiet worker is written to its subscriber at once;
a read of several messages, or a busy loop round, keeps one write per
connection at the end of the round (Broker.write_at_once)."""

from __future__ import annotations

import pytest

from actormq.actors import broker as broker_module
from actormq.transport.codec import Publish, Subscribe, Subscription, encode
from tests.unit.core_harness import Core


class CountingWire:
    """Counts the writes a Wire gets."""

    def __init__(self, wire) -> None:
        self.writes = 0
        original = wire.write

        def write(data):
            self.writes += 1
            original(data)
        wire.write = write


@pytest.fixture
def pair():
    core = Core()
    publisher, subscriber = core.client(), core.client()
    publisher.connect("lone-pub")
    subscriber.connect("lone-sub")
    subscriber.send(Subscribe(1, (Subscription("lone/#", 1),), {}))
    subscriber.received()
    core.settle(0.002)      # the worker has been quiet for longer than QUIET_WRITE_SECONDS
    yield core, publisher, subscriber, CountingWire(subscriber.wire)
    core.close()


def _publish(packet_id: int) -> bytes:
    return encode(Publish("lone/a", b"x" * 16, 1, False, False, packet_id, {}), 5)


def test_a_lone_message_is_written_before_the_round_ends(pair):
    core, publisher, subscriber, counted = pair
    publisher.conn.data_received(_publish(1))          # the loop has not turned yet
    assert [p.payload for p in subscriber.received()] == [b"x" * 16]
    assert counted.writes == 1
    core.settle()
    assert subscriber.received() == [] and counted.writes == 1


def test_a_read_of_several_messages_waits_for_the_end_of_the_round(pair):
    core, publisher, subscriber, counted = pair
    publisher.conn.data_received(_publish(1) + _publish(2))
    assert subscriber.received() == [] and counted.writes == 0
    core.settle()
    assert len(subscriber.received()) == 2 and counted.writes == 1


def test_a_lone_message_on_a_busy_worker_waits_for_the_end_of_the_round(pair, monkeypatch):
    core, publisher, subscriber, counted = pair
    publisher.conn.data_received(_publish(1))
    assert len(subscriber.received()) == 1
    core.settle()
    monkeypatch.setattr(broker_module, "QUIET_WRITE_SECONDS", 3600.0)   # never quiet again
    publisher.conn.data_received(_publish(2))
    assert subscriber.received() == [] and counted.writes == 1
    core.settle()
    assert len(subscriber.received()) == 1 and counted.writes == 2
