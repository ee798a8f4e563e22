"""A node of two worker processes (`actormq run -w 2`): clients pinned to one
worker each with `listener.tcp.worker_ports` still talk to each other (QoS
0/1/2, retained, wildcards, shared subscriptions); a session moves between
workers with its subscriptions and queue; a worker killed with SIGKILL comes
back while the other one's clients carry on and persistent sessions resume
(with three workers the two survivors share its sessions);
PUBLISH frames go only to workers with matching subscribers; $SYS sums every
worker; SIGTERM stops the node in time with exit code 0."""

from __future__ import annotations

import os
import re
import signal
import time
import zlib
from dataclasses import dataclass

import pytest

from actormq.storage.dump import iter_queues
from tests.integration.brokers import Broker, actormq_only
from actormq.transport.codec import Connect
from tests.integration.clients import TestClient, connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)

WORKER_LINE = re.compile(r"worker (\d+) listening on (\S+):(\d+) \(pid (\d+)\)")
PERSISTENT = {"session_expiry_interval": 3600}
PROBE = b"probe"
RESTART_WITHIN = 2.0
STOP_WITHIN = 5.0


@dataclass(frozen=True, slots=True)
class Node:
    """A broker of several workers (two unless asked) and the port and pid of each."""

    broker: Broker
    ports: tuple[int, ...]
    pids: tuple[int, ...]


@pytest.fixture
def make_node(make_broker):
    def make(workers: int = 2, **settings) -> Node:
        actormq_only("actormq worker processes")
        broker = make_broker(settings={"listener.tcp.worker_ports": "true", **settings},
                             workers=workers)
        deadline = time.monotonic() + 5
        while len(found := WORKER_LINE.findall(broker.stdout())) < workers:
            assert time.monotonic() < deadline, f"no worker lines in the banner:\n{broker.stdout()}"
            time.sleep(0.02)
        found = sorted(found)
        return Node(broker, tuple(int(port) for _, _, port, _ in found),
                    tuple(int(pid) for *_, pid in found))
    return make


@pytest.fixture
def node(make_node) -> Node:
    return make_node()


def routed(publisher: TestClient, topic: str, receiver: TestClient, *others: TestClient) -> None:
    """Publish probes until `receiver` gets one: the publisher's worker knows the
    route by then. The probes are drained from every receiver."""
    deadline = time.monotonic() + 3
    while not any(m.payload == PROBE for m in receiver.collect(0.05)):
        assert time.monotonic() < deadline, f"no route to {receiver.client_id} for {topic}"
        publisher.publish(topic, PROBE)
    for client in (receiver, *others):
        client.drain(quiet=0.2)


def numbers(client: TestClient, quiet: float = 0.3) -> list[int]:
    return [int(m.payload) for m in client.drain(quiet=quiet)]


def nothing_more(publisher: TestClient, topic: str, receiver: TestClient) -> None:
    """Nothing else arrived: a marker published now is the next message."""
    publisher.publish(topic, b"marker", qos=1)
    extra = receiver.expect_one()
    assert extra.payload == b"marker", f"unexpected {extra}"


def publish_numbers(publisher: TestClient, topic: str, numbers_: range, qos: int = 1) -> None:
    for number in numbers_:
        publisher.publish(topic, str(number).encode(), qos=qos)


# -- a subscriber and a publisher on different workers ----------------------------------

@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_reaches_a_subscriber_on_the_other_worker(node, qos):
    topic = unique("x")
    subscriber = connect(node.ports[1], unique("sub"))
    assert subscriber.subscribe(topic, 2) == [2]
    publisher = connect(node.ports[0], unique("pub"))
    routed(publisher, topic, subscriber)
    publish_numbers(publisher, topic, range(5), qos=qos)
    got = subscriber.expect(5)
    assert [int(m.payload) for m in got] == list(range(5))
    assert {m.qos for m in got} == {qos}
    nothing_more(publisher, topic, subscriber)


def test_message_properties_cross_workers_unchanged(node):
    topic = unique("props")
    props = {"user_property": [("k", "1"), ("k", "2"), ("a", "ü")], "response_topic": "reply",
             "correlation_data": b"\x00\x01\xff", "content_type": "application/json",
             "payload_format_indicator": 1}
    subscriber = connect(node.ports[1], unique("sub"))
    subscriber.subscribe(topic, 1, subscription_identifier=7)
    publisher = connect(node.ports[0], unique("pub"))
    routed(publisher, topic, subscriber)
    publisher.publish(topic, b'{"a": 1}', qos=1, properties={**props, "message_expiry_interval": 60})
    got = subscriber.expect_one().properties
    assert {k: v for k, v in got.items() if k in props} == props
    assert got["subscription_identifier"] == [7]
    assert 0 < got["message_expiry_interval"] <= 60


def _retained(port: int, topic: str) -> list[tuple[bytes, bool]]:
    """What a new subscriber on this port gets for the topic right away."""
    client = connect(port, unique("look"))
    client.subscribe(topic, 1)
    try:
        return [(m.payload, m.retain) for m in client.drain(quiet=0.2)]
    finally:
        client.disconnect()


def _eventually_retained(port: int, topic: str, expected: list) -> None:
    deadline = time.monotonic() + 3
    while (got := _retained(port, topic)) != expected:
        assert time.monotonic() < deadline, f"worker on {port} serves {got}, expected {expected}"


def test_retained_message_is_served_by_every_worker(node):
    topic = unique("kept")
    publisher = connect(node.ports[0], unique("pub"))
    publisher.publish(topic, b"kept", qos=1, retain=True)
    _eventually_retained(node.ports[1], topic, [(b"kept", True)])
    publisher.publish(topic, b"", qos=1, retain=True)
    _eventually_retained(node.ports[1], topic, [])


def test_wildcards_match_across_workers_once_per_message(node):
    base = unique("w")
    subscriber = connect(node.ports[1], unique("sub"))
    for topic_filter in (f"{base}/+/c", f"{base}/#", f"{base}/a/c"):
        subscriber.subscribe(topic_filter, 1)
    publisher = connect(node.ports[0], unique("pub"))
    routed(publisher, f"{base}/a/c", subscriber)
    for topic in (f"{base}/a/c", f"{base}/b/d", f"{base}/b/c", f"{base}"):
        publisher.publish(topic, b"m", qos=1)
    received = sorted(m.topic for m in subscriber.drain(quiet=0.3))
    assert received == sorted([f"{base}/a/c", f"{base}/b/d", f"{base}/b/c", f"{base}"])


def test_shared_subscription_gives_each_message_to_one_member_across_workers(node):
    topic, group = unique("s"), unique("g")
    members = [connect(port, unique("member")) for port in node.ports]
    for member in members:
        member.subscribe(f"$share/{group}/{topic}", 1)
    publishers = [connect(port, unique("pub")) for port in node.ports]
    for publisher, other_side in zip(publishers, reversed(members)):
        routed(publisher, topic, other_side, *members)
    publish_numbers(publishers[0], topic, range(0, 20))
    publish_numbers(publishers[1], topic, range(20, 40))
    got = [numbers(member) for member in members]
    assert sorted(got[0] + got[1]) == list(range(40)), "lost or duplicated messages"
    assert got[0] and got[1], f"one member got everything: {len(got[0])}/{len(got[1])}"


# -- sessions moving between workers ---------------------------------------------------

@pytest.mark.parametrize("mode", ["ram", "disc"])
def test_takeover_across_workers_keeps_subscriptions_and_queue(make_node, mode):
    node = make_node(**{"queue.storage": mode})
    client_id, topic = unique("mover"), unique("q")
    first = connect(node.ports[0], client_id, clean_start=False, properties=PERSISTENT)
    first.subscribe(topic, 1)
    first.disconnect()
    publish_numbers(connect(node.ports[0], unique("pub")), topic, range(3))
    moved = connect(node.ports[1], client_id, clean_start=False, properties=PERSISTENT)
    assert moved.connack.session_present
    assert [int(m.payload) for m in moved.expect(3)] == [0, 1, 2]
    publisher = connect(node.ports[1], unique("pub"))
    publisher.publish(topic, b"3", qos=1)
    assert moved.expect_one().payload == b"3", "the subscription did not move"
    nothing_more(publisher, topic, moved)


def test_takeover_of_a_live_connection_on_another_worker(node):
    client_id, topic = unique("twice"), unique("t")
    old = connect(node.ports[0], client_id, clean_start=False, properties=PERSISTENT)
    old.subscribe(topic, 1)
    new = connect(node.ports[1], client_id, clean_start=False, properties=PERSISTENT)
    assert new.connack.session_present
    assert old.wait_closed(), "the old connection was not closed"
    assert old.disconnect_reason == 0x8E
    connect(node.ports[1], unique("pub")).publish(topic, b"here", qos=1)
    assert new.expect_one().payload == b"here"
    assert old.messages.empty()


def test_clean_start_on_another_worker_discards_the_session(node):
    client_id, topic = unique("fresh"), unique("t")
    old = connect(node.ports[0], client_id, clean_start=False, properties=PERSISTENT)
    old.subscribe(topic, 1)
    old.disconnect()
    new = connect(node.ports[1], client_id, clean_start=True)
    assert not new.connack.session_present
    connect(node.ports[0], unique("pub")).publish(topic, b"gone", qos=1)
    new.disconnect()
    again = connect(node.ports[0], client_id, clean_start=False, properties=PERSISTENT)
    assert not again.connack.session_present


@pytest.mark.parametrize("clean_start", [False, True])
def test_simultaneous_connects_on_two_workers_leave_one_session(node, clean_start):
    """Both CONNECTs are written before either CONNACK: their claims cross."""
    for attempt in range(10):
        client_id = unique(f"race{attempt}-")
        first, second = RawClient(node.ports[0]), RawClient(node.ports[1])
        connect_packet = Connect(client_id, protocol_level=5, clean_start=clean_start,
                                 keepalive=60, properties=dict(PERSISTENT))
        first.send(connect_packet)
        second.send(connect_packet)
        live = []
        for client in (first, second):
            packets = []
            while (packet := client.poll(0.5)) not in (None, "timeout"):
                packets.append(packet)
            assert packets and packets[0].reason_code == 0, f"no CONNACK: {packets}"
            if packet == "timeout":
                live.append(client)
            else:
                assert packets[-1].reason_code == 0x8E, f"closed without 0x8E: {packets}"
        assert len(live) == 1, f"attempt {attempt}: {len(live)} connections kept the session"
        for client in (first, second):
            client.close()


# -- a worker killed with SIGKILL --------------------------------------------------------

def _queue_length(broker: Broker, client_id: str) -> int:
    rows = list(iter_queues(str(broker.data_dir), client_id))
    return rows[0]["length"] if rows else 0


def _await_restart(broker: Broker, worker_id: int, timeout: float) -> float:
    """Seconds until the node says the worker serves again."""
    start = time.monotonic()
    line = re.compile(rf"worker {worker_id} restarted \(pid \d+\)")
    while not line.search(broker.log()):
        assert time.monotonic() - start < timeout, f"worker {worker_id} not back after {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.slow
@pytest.mark.parametrize("mode, comes_back_to", [("disc", 0), ("disc", 1), ("disc_only", 0)])
def test_killed_worker_restarts_and_its_sessions_resume(make_node, mode, comes_back_to):
    node = make_node(**{"queue.storage": mode, "retained.storage": mode})
    topic, away_id, online_id = unique("k"), unique("away"), unique("online")
    bystander = connect(node.ports[0], unique("bystander"))
    bystander.subscribe(f"{topic}/by", 0)
    away = connect(node.ports[1], away_id, clean_start=False, properties=PERSISTENT)
    away.subscribe(topic, 1)
    away.disconnect()
    online = connect(node.ports[1], online_id, clean_start=False, properties=PERSISTENT)
    online.subscribe(f"{topic}/online", 1)
    publisher = connect(node.ports[1], unique("pub"))
    publish_numbers(publisher, topic, range(5))
    publisher.disconnect()
    deadline = time.monotonic() + 5
    while _queue_length(node.broker, away_id) < 5:     # committed before the kill
        assert time.monotonic() < deadline, "the queued messages were never committed"
        time.sleep(0.05)

    os.kill(node.pids[1], signal.SIGKILL)
    assert online.wait_closed(), "the killed worker's client kept its connection"
    assert _await_restart(node.broker, 1, RESTART_WITHIN + 3) < RESTART_WITHIN
    assert node.broker.running

    survivor_side = connect(node.ports[0], unique("pub"))
    survivor_side.publish(f"{topic}/by", b"still here")
    assert bystander.expect_one().payload == b"still here", "the other worker's client was hurt"
    publish_numbers(survivor_side, topic, range(5, 7))

    back = connect(node.ports[comes_back_to], away_id, clean_start=False, properties=PERSISTENT)
    assert back.connack.session_present, "the persistent session did not survive the kill"
    assert [int(m.payload) for m in back.expect(7)] == list(range(7))
    nothing_more(survivor_side, topic, back)
    again = connect(node.broker.port, online_id, clean_start=False, properties=PERSISTENT)
    assert again.connack.session_present
    routed(survivor_side, f"{topic}/online", again)
    survivor_side.publish(f"{topic}/online", b"1", qos=1)
    assert again.expect_one().payload == b"1", "the online client's subscription was lost"


@pytest.mark.slow
@pytest.mark.parametrize("qos", [1, 2])
def test_kill9_loses_no_message_acknowledged_across_workers(make_node, qos):
    count = 200
    node = make_node(**{"queue.storage": "disc", "retained.storage": "disc"})
    client_id, topic = unique("durable"), unique("q")
    away = connect(node.ports[1], client_id, clean_start=False, properties=PERSISTENT)
    away.subscribe(topic, qos)
    away.disconnect()
    publisher = connect(node.ports[0], unique("pub"))
    sent = [publisher.publish(topic, str(i).encode(), qos=qos, wait=False) for i in range(count)]
    for info in sent:
        publisher.wait_published(info, timeout=30)
    node.broker.kill9()
    node.broker.restart()
    back = connect(node.broker.port, client_id, clean_start=False, properties=PERSISTENT)
    assert back.connack.session_present
    assert [int(m.payload) for m in back.expect(count, timeout=30)] == list(range(count))


def split_between_two(count: int) -> list[str]:
    """Client ids half of which the first of two survivors takes (crc32 even), half the second."""
    ids: dict[int, list[str]] = {0: [], 1: []}
    while min(len(group) for group in ids.values()) < count // 2:
        client_id = unique("away")
        group = ids[zlib.crc32(client_id.encode()) % 2]
        if len(group) < count // 2:
            group.append(client_id)
    return ids[0] + ids[1]


@pytest.mark.slow
def test_survivors_share_the_sessions_of_a_killed_worker(make_node):
    node = make_node(workers=3, **{"queue.storage": "disc", "retained.storage": "disc"})
    topic = unique("k")
    client_ids = split_between_two(8)
    for client_id in client_ids:
        away = connect(node.ports[2], client_id, clean_start=False, properties=PERSISTENT)
        away.subscribe(f"{topic}/{client_id}", 1)
        away.disconnect()
    publisher = connect(node.ports[2], unique("pub"))
    for client_id in client_ids:
        publisher.publish(f"{topic}/{client_id}", b"0", qos=1)
    publisher.disconnect()

    os.kill(node.pids[2], signal.SIGKILL)
    _await_restart(node.broker, 2, RESTART_WITHIN + 3)
    took_over = re.findall(r"worker-(\d)\] actormq.peers: took over (\d+)", node.broker.log())
    assert sorted((int(worker), int(count)) for worker, count in took_over) == [(0, 4), (1, 4)], \
        node.broker.log()
    survivor_side = connect(node.ports[0], unique("pub"))
    for client_id in client_ids:
        survivor_side.publish(f"{topic}/{client_id}", b"1", qos=1)

    for index, client_id in enumerate(client_ids):
        back = connect(node.ports[index % 3], client_id, clean_start=False, properties=PERSISTENT)
        assert back.connack.session_present, client_id
        assert [m.payload for m in back.expect(2)] == [b"0", b"1"], client_id
        nothing_more(survivor_side, f"{topic}/{client_id}", back)


# -- what crosses the bus ------------------------------------------------------------------

def _latest(watcher: TestClient, seconds: float) -> int:
    """The last $SYS/broker/bus/publish/frames value published within `seconds`."""
    got = watcher.collect(seconds)
    assert got, "no $SYS update"
    return int(got[-1].payload)


@pytest.mark.slow
def test_publish_frames_go_only_to_workers_with_subscribers(make_node):
    node = make_node(sys_interval=1)
    here, there = unique("here"), unique("there")
    watcher = connect(node.ports[0], unique("sys"))
    watcher.subscribe("$SYS/broker/bus/publish/frames", 0)
    local = connect(node.ports[0], unique("local"))
    local.subscribe(here, 0)
    remote = [connect(node.ports[1], unique("remote")) for _ in range(3)]
    for client in remote:
        client.subscribe(there, 1)
    remote[0].subscribe(f"{there}/#", 1)     # overlapping: still one frame per message
    publisher = connect(node.ports[0], unique("pub"))
    routed(publisher, there, remote[0], *remote)
    baseline = _latest(watcher, 1.2)

    publish_numbers(publisher, here, range(10))
    assert numbers(local) == list(range(10))
    assert _latest(watcher, 1.2) == baseline, "frames went to a worker without subscribers"

    publish_numbers(publisher, there, range(10))
    for client in remote:
        assert numbers(client) == list(range(10))
    assert _latest(watcher, 1.2) == baseline + 10, "not one frame per message and worker"


def _connected(watcher: TestClient, expected: int) -> None:
    deadline = time.monotonic() + 5
    value = None
    while value != expected:
        assert time.monotonic() < deadline, f"clients/connected stayed at {value}, expected {expected}"
        for message in watcher.collect(0.3):
            value = int(message.payload)


def test_sys_counters_sum_every_worker(make_node):
    node = make_node(sys_interval=1)
    watchers = [connect(port, unique("sys")) for port in node.ports]
    for watcher in watchers:
        watcher.subscribe("$SYS/broker/clients/connected", 0)
    extra = [connect(node.ports[1], unique("c")) for _ in range(2)]
    for watcher in watchers:
        _connected(watcher, 4)
    extra[0].disconnect()
    for watcher in watchers:
        _connected(watcher, 3)


# -- stopping ---------------------------------------------------------------------------------

def test_sigterm_stops_every_worker_in_time_with_clients_connected(node):
    clients = [connect(port, unique("c"), clean_start=False, properties=PERSISTENT)
               for port in node.ports for _ in range(3)]
    for client in clients:
        client.subscribe(unique("t"), 1)
    proc = node.broker.proc
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(STOP_WITHIN + 5)
    took = time.monotonic() - start
    assert code == 0, node.broker.log()
    assert took < STOP_WITHIN, f"the node took {took:.1f} s to stop"
    for client in clients:
        assert client.wait_closed(1), f"{client.client_id} is still connected"
        assert client.disconnect_reason == 0x8B      # server shutting down
    for pid in node.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
