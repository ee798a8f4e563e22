"""The core behaviours with the publisher on one worker and the subscriber on
the other (`actormq run -w 2`, clients pinned with `listener.tcp.worker_ports`):
QoS 0/1/2 exactly as sent, will and will delay (and a will delay cancelled by
a reconnect on the other worker), topic aliases both ways, message expiry in
the online queue, in the offline queue and across a restart, the client's
receive maximum, retained messages with an expiry.

A test that asserts a message did not arrive first waits for a later message
on the same path that did (a marker published after it).
"""

from __future__ import annotations

import time

import pytest

from actormq.transport.codec import Puback, Publish
from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import TestClient, Will, connect, unique
from tests.integration.rawclient import RawClient
from tests.integration.test_workers import WORKER_LINE, Node, routed

pytestmark = pytest.mark.timeout(60)

PERSISTENT = {"session_expiry_interval": 3600}
MARKER = b"marker"


def start_node(workdir, **settings) -> Node:
    actormq_only("actormq worker processes")
    broker = start_broker(workdir, settings={"listener.tcp.worker_ports": "true", **settings},
                          workers=2)
    return Node(broker, *worker_ports(broker))


def worker_ports(broker) -> tuple[tuple[int, ...], tuple[int, ...]]:
    deadline = time.monotonic() + 5
    while len(found := WORKER_LINE.findall(broker.stdout())) < 2:
        assert time.monotonic() < deadline, f"no worker lines in the banner:\n{broker.stdout()}"
        time.sleep(0.02)
    found = sorted(found)
    return tuple(int(port) for _, _, port, _ in found), tuple(int(pid) for *_, pid in found)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    started = start_node(tmp_path_factory.mktemp("xw"))
    yield started
    started.broker.stop()


def up_to_marker(client: TestClient, timeout: float = 5.0) -> list:
    """Every message until the marker (excluded): what arrived before a message
    published after them all."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        message = client.expect_one(max(deadline - time.monotonic(), 0.01))
        if message.payload == MARKER:
            return got
        got.append(message)


def raw_until(raw: RawClient, payload: bytes) -> list[Publish]:
    """The PUBLISH packets a raw client receives up to the one carrying payload (included)."""
    got = []
    while not got or got[-1].payload != payload:
        got.append(raw.expect(Publish))
    return got


def raw_routed(publisher: TestClient, topic: str, raw: RawClient) -> None:
    """`routed` for a raw subscriber: QoS 0 probes until one arrives, then drained."""
    deadline = time.monotonic() + 3
    while raw.poll(0.05) in ("timeout", None):
        assert time.monotonic() < deadline, f"no route for {topic}"
        publisher.publish(topic, b"probe")
    while raw.poll(0.2) not in ("timeout", None):
        pass


# -- QoS 0/1/2 ----------------------------------------------------------------------------

@pytest.mark.parametrize("qos", [0, 1, 2])
def test_each_qos_arrives_once_in_order_across_workers(node, qos):
    topic = unique("q")
    subscriber = connect(node.ports[1], unique("sub"))
    subscriber.subscribe(topic, 2)
    publisher = connect(node.ports[0], unique("pub"))
    routed(publisher, topic, subscriber)
    for number in range(20):
        publisher.publish(topic, str(number).encode(), qos=qos)
    publisher.publish(topic, MARKER, qos=qos)
    got = up_to_marker(subscriber)
    assert [int(m.payload) for m in got] == list(range(20)), "lost, duplicated or reordered"
    assert {m.qos for m in got} == {qos}


# -- wills ---------------------------------------------------------------------------------

def test_will_of_a_dropped_client_reaches_the_other_worker(node):
    topic = unique("will")
    subscriber = connect(node.ports[1], unique("sub"))
    subscriber.subscribe(topic, 1)
    routed(connect(node.ports[0], unique("probe")), topic, subscriber)
    dying = connect(node.ports[0], unique("dying"), will=Will(topic, b"gone", qos=1))
    dying.drop()
    message = subscriber.expect_one()
    assert (message.payload, message.qos) == (b"gone", 1)


def test_normal_disconnect_sends_no_will_across_workers(node):
    topic = unique("nowill")
    subscriber = connect(node.ports[1], unique("sub"))
    subscriber.subscribe(topic, 1)
    publisher = connect(node.ports[0], unique("pub"))
    routed(publisher, topic, subscriber)
    connect(node.ports[0], unique("polite"), will=Will(topic, b"gone", qos=1)).disconnect()
    publisher.publish(topic, MARKER, qos=1)
    assert up_to_marker(subscriber) == []


def test_will_delay_holds_the_will_then_sends_it_across_workers(node):
    topic = unique("delayed")
    subscriber = connect(node.ports[1], unique("sub"))
    subscriber.subscribe(topic, 1)
    routed(connect(node.ports[0], unique("probe")), topic, subscriber)
    dying = connect(node.ports[0], unique("dying"), properties={"session_expiry_interval": 60},
                    will=Will(topic, b"late", qos=1, properties={"will_delay_interval": 1}))
    dying.drop()
    dropped_at = time.monotonic()
    assert subscriber.expect_one(timeout=5).payload == b"late"
    assert time.monotonic() - dropped_at >= 0.9, "the will came before its delay"


def test_reconnect_on_the_other_worker_within_the_will_delay_cancels_the_will(node):
    topic, client_id = unique("cancel"), unique("back")
    subscriber = connect(node.ports[1], unique("sub"))
    subscriber.subscribe(topic, 1)
    publisher = connect(node.ports[0], unique("pub"))
    routed(publisher, topic, subscriber)
    props = {"session_expiry_interval": 60}
    will = Will(topic, b"late", qos=1, properties={"will_delay_interval": 1})
    connect(node.ports[0], client_id, properties=props, will=will, clean_start=False).drop()
    connect(node.ports[1], client_id, properties=props, clean_start=False)
    time.sleep(1.5)                 # past the delay the will would have had
    publisher.publish(topic, MARKER, qos=1)
    assert up_to_marker(subscriber) == [], "the will was sent after the client came back"


# -- topic aliases -------------------------------------------------------------------------

def test_topic_aliases_both_ways_across_workers(node):
    topic = unique("alias")
    subscriber = RawClient(node.ports[1])
    subscriber.connect(unique("sub"), properties={"topic_alias_maximum": 2})
    subscriber.subscribe(topic, 0)
    publisher = RawClient(node.ports[0])
    publisher.connect(unique("pub"))
    deadline = time.monotonic() + 3
    while True:                     # route known: the alias mapping is then set
        publisher.send(Publish(topic, b"probe", properties={"topic_alias": 1}))
        if subscriber.poll(0.05) not in ("timeout", None):
            break
        assert time.monotonic() < deadline, "no route"
    publisher.send(Publish("", b"by alias", properties={"topic_alias": 1}),
                   Publish(topic, MARKER))
    got = raw_until(subscriber, MARKER)
    assert [p.payload for p in got if p.payload != b"probe"] == [b"by alias", MARKER]
    assert {p.properties.get("topic_alias") for p in got} == {1}, "the server did not alias"
    assert [p.topic_name for p in got if p.payload != b"probe"] == ["", ""]


# -- receive maximum and message expiry in the online queue -------------------------------

def test_receive_maximum_and_online_expiry_across_workers(node):
    topic = unique("rm")
    subscriber = RawClient(node.ports[1])
    subscriber.connect(unique("sub"), properties={"receive_maximum": 1})
    subscriber.subscribe(topic, 1)
    publisher = connect(node.ports[0], unique("pub"))
    raw_routed(publisher, topic, subscriber)
    publisher.publish(topic, b"first", qos=1)
    first = subscriber.expect(Publish)
    assert first.payload == b"first"
    publisher.publish(topic, b"expires", qos=1, properties={"message_expiry_interval": 1})
    publisher.publish(topic, b"keeps", qos=1, properties={"message_expiry_interval": 60})
    publisher.publish(topic, MARKER, qos=1)
    subscriber.expect_nothing(0.3)  # one in flight: the client's receive maximum
    time.sleep(1.2)
    subscriber.send(Puback(first.packet_id))
    keeps = subscriber.expect(Publish)
    assert keeps.payload == b"keeps", "an expired message was delivered"
    assert 0 < keeps.properties["message_expiry_interval"] < 60
    subscriber.expect_nothing(0.3)
    subscriber.send(Puback(keeps.packet_id))
    assert subscriber.expect(Publish).payload == MARKER


# -- message expiry in the offline queue, and across a restart ----------------------------

def _queue_offline(node: Node, topic: str, client_id: str) -> None:
    """A persistent session subscribed on worker 1, offline, with three messages
    queued from worker 0: one expiring in 1 s, one in 60 s, the marker."""
    subscriber = connect(node.ports[1], client_id, clean_start=False, properties=PERSISTENT)
    subscriber.subscribe(topic, 1)
    publisher = connect(node.ports[0], unique("pub"))
    routed(publisher, topic, subscriber)
    subscriber.disconnect()
    publisher.publish(topic, b"expires", qos=1, properties={"message_expiry_interval": 1})
    publisher.publish(topic, b"keeps", qos=1, properties={"message_expiry_interval": 60})
    publisher.publish(topic, MARKER, qos=1)
    publisher.disconnect()


def _resume_and_check(port: int, client_id: str) -> None:
    resumed = connect(port, client_id, clean_start=False, properties=PERSISTENT)
    assert resumed.connack.session_present
    got = up_to_marker(resumed)
    assert [m.payload for m in got] == [b"keeps"], "an expired message was delivered"
    assert 0 < got[0].properties["message_expiry_interval"] < 60


def test_offline_expiry_when_the_session_moves_to_the_other_worker(node):
    topic, client_id = unique("off"), unique("sleeper")
    _queue_offline(node, topic, client_id)
    time.sleep(1.5)
    _resume_and_check(node.ports[0], client_id)


def test_offline_expiry_across_a_restart(tmp_path):
    restarted = start_node(tmp_path, **{"queue.storage": "disc"})
    try:
        topic, client_id = unique("off"), unique("sleeper")
        _queue_offline(restarted, topic, client_id)
        restarted.broker.restart()
        time.sleep(1.2)
        ports, _ = worker_ports(restarted.broker)
        _resume_and_check(ports[0], client_id)
    finally:
        restarted.broker.stop()


# -- retained messages with an expiry -------------------------------------------------------

def test_retained_message_expires_on_every_worker(node):
    topic = unique("kept")
    publisher = connect(node.ports[0], unique("pub"))
    publisher.publish(topic, b"short", qos=1, retain=True, properties={"message_expiry_interval": 1})
    deadline = time.monotonic() + 3
    while True:                     # served by the other worker while it lives
        look = connect(node.ports[1], unique("look"))
        look.subscribe(topic, 1)
        if [m.payload for m in look.collect(0.2)] == [b"short"]:
            break
        look.disconnect()
        assert time.monotonic() < deadline, "the retained message never reached worker 1"
    time.sleep(1.2)
    late = connect(node.ports[1], unique("late"))
    late.subscribe(topic, 1)
    connect(node.ports[1], unique("pub")).publish(topic, MARKER, qos=1)
    assert up_to_marker(late) == [], "an expired retained message was served"
