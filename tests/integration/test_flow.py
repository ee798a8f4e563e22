"""Flow control: a subscriber whose queue fills holds its publishers back —
on its own worker and on the others — for at most `queue.max_publisher_hold`
per message; a held publisher's PINGREQs are answered and its messages to
other topics go on; every drop is counted by reason in $SYS and logged."""

from __future__ import annotations

import re
import time

import pytest

from actormq.transport.codec import Pingreq, Pingresp, Puback, Publish, Will
from tests.integration.brokers import actormq_only
from tests.integration.clients import TestClient, connect, unique
from tests.integration.rawclient import RawClient
from tests.integration.test_workers import make_node, routed  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(60)

SMALL_QUEUE = {"queue.max_online_messages": "100", "queue.max_offline_messages": "5",
               "sys_interval": "1"}


def dropped(watcher: TestClient, reason: str, at_least: int, within: float = 5.0) -> int:
    """The node-wide count of drops for `reason` once it reached `at_least`."""
    topic = f"$SYS/broker/messages/dropped/{reason}"
    deadline = time.monotonic() + within
    value = -1
    while value < at_least:
        assert time.monotonic() < deadline, f"{topic} stayed at {value}, expected {at_least}+"
        for message in watcher.collect(0.3):
            if message.topic == topic:
                value = int(message.payload)
    return value


def sys_watcher(port: int) -> TestClient:
    watcher = connect(port, unique("sys"))
    watcher.subscribe("$SYS/broker/messages/dropped/#", 0)
    return watcher


def test_a_held_publisher_is_answered_and_goes_on_after_the_bound(make_broker):
    actormq_only("queue.max_publisher_hold")
    broker = make_broker(settings=SMALL_QUEUE)
    stalled_topic, healthy_topic = unique("stalled"), unique("healthy")
    stalled = connect(broker.port, unique("stalled"), manual_ack=True)   # never acknowledges
    stalled.subscribe(stalled_topic, 1)
    healthy = connect(broker.port, unique("healthy"))
    healthy.subscribe(healthy_topic, 1)
    watcher = sys_watcher(broker.port)
    publisher = RawClient(broker.port)
    publisher.connect(unique("pub"), keepalive=30)

    burst = [Publish(stalled_topic, b"x", qos=1, packet_id=n) for n in range(1, 401)]
    started = time.monotonic()
    publisher.send(*burst, Pingreq(), Publish(healthy_topic, b"after", qos=1, packet_id=401))
    while not isinstance(publisher.poll(0.1), Pingresp):
        assert time.monotonic() - started < 0.5, "a held publisher's PINGREQ waited for the hold"
    assert healthy.expect_one(timeout=4).payload == b"after"
    assert time.monotonic() - started < 2.5, \
        "a stalled subscriber stopped the publisher's other traffic beyond the bound"

    assert dropped(watcher, "hold_timeout", 1) >= 1
    assert re.search(r"client stalled-\w+: 1 message dropped \(hold_timeout\)", broker.log())


def test_a_full_queue_holds_back_publishers_on_the_other_worker(make_node):
    # a hold long enough that a loaded machine never reaches the bound (the first test
    # covers what happens then): every message must be held back, none dropped
    node = make_node(**{"queue.max_online_messages": "200", "queue.max_inflight": "10",
                        "queue.max_publisher_hold": "30s"})
    topic, count = unique("fanin"), 3000
    subscriber = connect(node.ports[1], unique("slow"))
    subscriber.subscribe(topic, 1)
    slow_reader = subscriber.client.on_message

    def on_message(client, userdata, message):
        time.sleep(0.0003)          # reads slower than the publisher writes
        slow_reader(client, userdata, message)
    subscriber.client.on_message = on_message
    publishers = [connect(node.ports[0], unique("fast")) for _ in range(4)]
    routed(publishers[0], topic, subscriber)
    sent = [(publisher, publisher.publish(topic, str(n).encode(), qos=1, wait=False))
            for n in range(count) for publisher in publishers[n % 4:n % 4 + 1]]
    for publisher, info in sent:
        publisher.wait_published(info, timeout=30)
    got = sorted(int(m.payload) for m in subscriber.drain(quiet=1.0, at_most=30))
    assert got == list(range(count)), f"{count - len(set(got))} PUBACKed messages lost"


def test_drops_are_counted_by_reason_and_logged_once_per_client_and_reason(make_broker):
    actormq_only("$SYS/broker/messages/dropped/<reason>")
    broker = make_broker(settings=SMALL_QUEUE)
    watcher = sys_watcher(broker.port)
    client_id, topic = unique("away"), unique("q")
    away = connect(broker.port, client_id, clean_start=False,
                   properties={"session_expiry_interval": 600})
    away.subscribe(topic, 1)
    away.disconnect()
    publisher = connect(broker.port, unique("pub"))
    publisher.publish(topic, b"short-lived", qos=1, properties={"message_expiry_interval": 1})
    for number in range(7):                 # 1 + 7 > 5: three are dropped
        publisher.publish(topic, str(number).encode(), qos=1)
    time.sleep(1.2)
    back = connect(broker.port, client_id, clean_start=False,
                   properties={"session_expiry_interval": 600})
    assert [m.payload for m in back.expect(4)] == [b"0", b"1", b"2", b"3"]
    back.expect_none(0.3)

    assert dropped(watcher, "queue_full", 3) == 3
    assert dropped(watcher, "expired", 1) == 1
    lines = re.findall(rf"client {client_id}: .*dropped \(queue_full\).*", broker.log())
    assert len(lines) == 1, lines


HELD_COUNT = 90     # past the high mark (50 of a 100-message queue) and the 5 in flight


def _held_publisher_closes(publisher_port: int, subscriber_port: int, probe=None) -> None:
    """A publisher held back by a slow subscriber sends its last messages and a
    DISCONNECT, and closes: what it sent is routed, its will is not published."""
    topic, will_topic = unique("held"), unique("will")
    subscriber = RawClient(subscriber_port)
    subscriber.connect(unique("slow"), properties={"receive_maximum": 5})
    subscriber.subscribe(topic, 1)
    will_watcher = connect(subscriber_port, unique("watch"))
    will_watcher.subscribe(will_topic, 0)
    if probe is not None:
        probe(topic, subscriber)
    publisher = RawClient(publisher_port)
    publisher.connect(unique("pub"), will=Will(will_topic, b"gone", 0, False))
    burst = [Publish(topic, str(n).encode(), qos=1, packet_id=n + 1) for n in range(HELD_COUNT)]
    publisher.send(*burst[:60])
    time.sleep(0.5)             # the subscriber's queue is congested: the publisher is held
    publisher.send(*burst[60:])
    publisher.disconnect()      # DISCONNECT, then the socket closes
    will_watcher.expect_none(0.5)   # it came while held, and was taken: a clean disconnect

    got = []
    deadline = time.monotonic() + 15
    while len(got) < HELD_COUNT and time.monotonic() < deadline:
        packet = subscriber.poll(0.5)
        if isinstance(packet, Publish):
            got.append(int(packet.payload))
            subscriber.send(Puback(packet.packet_id))   # one at a time: the queue drains slowly
    assert got == list(range(HELD_COUNT)), f"{HELD_COUNT - len(got)} messages of a held publisher lost"


def test_a_held_publisher_that_closes_has_its_messages_routed_and_its_disconnect_kept(make_broker):
    actormq_only("backpressure (queue.max_publisher_hold)")
    broker = make_broker(settings={"queue.max_online_messages": "100", "queue.max_publisher_hold": "30s"})
    _held_publisher_closes(broker.port, broker.port)


def test_a_held_publisher_that_closes_on_another_worker_has_its_messages_routed(make_node):
    node = make_node(**{"queue.max_online_messages": "100", "queue.max_publisher_hold": "30s"})

    def probe(topic: str, subscriber: RawClient) -> None:
        prober = connect(node.ports[0], unique("probe"))
        deadline = time.monotonic() + 3
        while not isinstance(subscriber.poll(0.05), Publish):
            assert time.monotonic() < deadline, "no route to the subscriber's worker"
            prober.publish(topic, b"probe")
        while subscriber.poll(0.2) != "timeout":
            pass
    _held_publisher_closes(node.ports[0], node.ports[1], probe)
