"""storage.sync = on with the write-ahead log: the acknowledgements wait for
the flush of the log's group commit. Several publishers,
each with 100 messages in flight, QoS 1 and 2, MQTT 3.1.1 and 5: each gets
its acknowledgements in the order it published, and every acknowledged
message is there, in each publisher's order, after the broker is killed
(kill -9) right after the last acknowledgement and started again."""

from __future__ import annotations

import threading

import pytest

from actormq.transport.codec import Puback, Pubcomp, Publish, Pubrec, Pubrel
from tests.integration.brokers import actormq_only
from tests.integration.clients import unique
from tests.integration.rawclient import RawClient
from tests.integration.test_persistence import go_offline, kill9_all
from tests.integration.test_write_log import disc, received_numbers

pytestmark = pytest.mark.timeout(120)
PUBLISHERS = 3
COUNT = 300         # per publisher
WINDOW = 100


def publish_window(port: int, topic: str, first_number: int, qos: int, version: int) -> None:
    """Publish first_number .. + COUNT - 1, WINDOW at a time; the acks must come in order."""
    publisher = RawClient(port, version=version)
    publisher.connect(unique("pub"))
    for first in range(first_number, first_number + COUNT, WINDOW):
        numbers = range(first, min(first + WINDOW, first_number + COUNT))
        ids = [n % 65535 + 1 for n in numbers]
        publisher.send(*(Publish(topic, str(n).encode(), qos, packet_id=i) for n, i in zip(numbers, ids)))
        acks = [publisher.expect(Puback if qos == 1 else Pubrec, timeout=30) for _ in numbers]
        assert [ack.packet_id for ack in acks] == ids, "acknowledged out of order"
        assert all(ack.reason_code < 0x80 for ack in acks), acks
        if qos == 2:
            publisher.send(*(Pubrel(i) for i in ids))
            for _ in ids:
                publisher.expect(Pubcomp, timeout=30)
    publisher.disconnect()


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
@pytest.mark.parametrize("qos", [1, 2])
def test_every_message_acknowledged_before_a_kill9_arrives_in_each_publishers_order(make_broker, qos, version):
    actormq_only("the write-ahead log is actormq's")
    broker = make_broker(settings=disc("on"))
    client_id, topic = unique("synced"), unique("q")
    go_offline(broker.port, client_id, topic, qos)
    failures: list = []

    def publisher(index: int) -> None:
        try:
            publish_window(broker.port, topic, index * COUNT, qos, version)
        except BaseException as error:     # noqa: BLE001 - reported by the test's thread
            failures.append(error)
    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(PUBLISHERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    kill9_all(broker)
    broker.restart()
    got = received_numbers(broker.port, client_id, PUBLISHERS * COUNT)
    assert sorted(got) == list(range(PUBLISHERS * COUNT)), "an acknowledged message was lost"
    for index in range(PUBLISHERS):
        mine = [n for n in got if index * COUNT <= n < (index + 1) * COUNT]
        assert mine == sorted(mine), f"publisher {index}'s messages out of order"
