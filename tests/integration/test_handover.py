"""A persistent session moving between the two workers of `actormq run -w 2`
while QoS 1 and QoS 2 publishers on both workers keep publishing: every
message a publisher got its PUBACK/PUBCOMP for reaches the subscriber (QoS 2
exactly once), through takeovers, reconnects and a kill -9 of the
subscriber's worker; a restarted registry shard still knows who holds a
client id.

The subscriber is one client whose state lives on across its connections, as
a real client's would: each connection shares the received list and paho's
store of QoS 2 messages awaiting PUBREL."""

from __future__ import annotations

import collections
import os
import re
import queue
import signal
import threading
import time
import zlib

import paho.mqtt.client as paho
import pytest

from tests.integration.clients import HOST, TestClient, connect, unique
from tests.integration.test_workers import make_node, routed  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(90)

PERSISTENT = {"session_expiry_interval": 3600}
# queue limits would drop messages by design while the session is offline
UNLIMITED_DISC = {"queue.storage": "disc", "retained.storage": "disc",
                  "queue.max_offline_messages": "0", "queue.max_online_messages": "0"}
MOVES = 4
MOVE_EVERY = 1.0
PUBLISH_PAUSE = 0.002


class MovingSubscriber:
    """One client id connected to one worker at a time, its state kept across connections."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.received: queue.Queue = queue.Queue()
        self.awaiting_pubrel: collections.OrderedDict = collections.OrderedDict()
        self.awaiting_pubrel_lock = threading.Lock()
        self.conn: TestClient | None = None

    def connect(self, port: int) -> TestClient:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=paho.MQTTv5, reconnect_on_failure=False)
        client._in_messages = self.awaiting_pubrel      # the client's persistent QoS 2 state
        # and its lock: the old connection's thread may still use it during a takeover
        client._in_message_mutex = self.awaiting_pubrel_lock
        conn = TestClient(client, self.client_id, 5)
        conn.messages = self.received
        from tests.integration.clients import to_paho
        from paho.mqtt.packettypes import PacketTypes
        client.connect(HOST, port, 60, clean_start=False,
                       properties=to_paho(PacketTypes.CONNECT, PERSISTENT))
        conn._thread.start()
        assert conn._connacked.wait(5) and conn.connack is not None, "no CONNACK"
        assert conn.connack.reason_code == 0
        self.conn = conn
        return conn

    def take_over(self, port: int) -> None:
        old = self.conn
        self.connect(port)
        assert old.wait_closed(), "the old connection was not closed"
        old._halt()

    def reconnect(self, port: int) -> None:
        self.conn.disconnect()
        self.connect(port)


class Publisher(threading.Thread):
    """Publishes numbered messages until stopped; remembers which were acknowledged."""

    def __init__(self, port: int, topic: str, qos: int) -> None:
        super().__init__(daemon=True)
        self.name_ = unique(f"pub{qos}")
        self.client = connect(port, self.name_)
        self.topic, self.qos = topic, qos
        self.sent: list = []
        self.stop = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stop.is_set() and not self.client.closed.is_set():
            info = self.client.client.publish(self.topic, f"{self.name_}:{number}".encode(), self.qos)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                break
            self.sent.append((number, info))
            number += 1
            time.sleep(PUBLISH_PAUSE)

    def acknowledged(self) -> set[bytes]:
        """Payloads the broker acknowledged with a success code."""
        codes = self.client.publish_codes
        return {f"{self.name_}:{number}".encode() for number, info in self.sent
                if info.is_published() and codes.get(info.mid, 0) < 0x80}


def subscribed_with_publishers(node, subscriber: "MovingSubscriber", at: int) -> list:
    """The subscriber on worker `at` subscribed to QoS 1 and QoS 2 topics that a
    publisher of each QoS on every worker publishes to (started)."""
    base = unique("moving")
    first = subscriber.connect(node.ports[at])
    assert first.subscribe(f"{base}/#", 2) == [2]
    for port in node.ports:
        if port != node.ports[at]:
            probe = connect(port, unique("probe"))
            routed(probe, f"{base}/probe", first)
            probe.disconnect()
    publishers = [Publisher(port, f"{base}/q{qos}", qos) for qos in (1, 2) for port in node.ports]
    for publisher in publishers:
        publisher.start()
    return publishers


@pytest.mark.parametrize("workers", [2, 4])
def test_no_acknowledged_message_lost_while_the_session_moves_and_its_worker_dies(make_node,
                                                                                   workers):
    node = make_node(workers=workers, **UNLIMITED_DISC)
    subscriber = MovingSubscriber(unique("sub"))
    at = 0
    publishers = subscribed_with_publishers(node, subscriber, at)
    for move in range(MOVES):
        time.sleep(MOVE_EVERY)
        at = (at + 1) % workers
        (subscriber.take_over if move % 2 == 0 else subscriber.reconnect)(node.ports[at])

    time.sleep(MOVE_EVERY / 2)
    os.kill(node.pids[at], signal.SIGKILL)      # the worker that holds the session
    assert subscriber.conn.wait_closed(), "the killed worker's client kept its connection"
    subscriber.conn._halt()
    time.sleep(MOVE_EVERY / 2)
    subscriber.connect(node.ports[(at + 1) % workers])      # a survivor took the session over
    time.sleep(MOVE_EVERY / 2)
    every_acknowledged_message_delivered_once(publishers, subscriber)


@pytest.mark.parametrize("shard", ["dead", "survivor"])
def test_no_acknowledged_message_lost_when_the_client_comes_back_before_the_survivor_knows(
        make_node, shard):
    """kill -9 of the subscriber's worker and a CONNECT to the survivor at once:
    it may arrive before the survivor heard of the death (the registry shard of
    the client id being the dead worker or the survivor); what the survivor's
    publishers sent to the dead worker meanwhile still reaches the session."""
    node = make_node(**UNLIMITED_DISC)
    client_id = unique("sub")
    while shard_of(client_id) != (0 if shard == "dead" else 1):
        client_id = unique("sub")
    subscriber = MovingSubscriber(client_id)
    publishers = subscribed_with_publishers(node, subscriber, 0)
    time.sleep(MOVE_EVERY)
    old = subscriber.conn
    os.kill(node.pids[0], signal.SIGKILL)
    subscriber.connect(node.ports[1])
    assert old.wait_closed(), "the killed worker's client kept its connection"
    old._halt()
    time.sleep(MOVE_EVERY)
    every_acknowledged_message_delivered_once(publishers, subscriber)


def every_acknowledged_message_delivered_once(publishers: list, subscriber: MovingSubscriber) -> None:
    """Stop the publishers; every message they got a success code for reached the
    subscriber, QoS 2 exactly once."""
    for publisher in publishers:
        publisher.stop.set()
    for publisher in publishers:
        publisher.join(5)
        deadline = time.monotonic() + 10
        while any(not info.is_published() for _, info in publisher.sent) and \
                not publisher.client.closed.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)

    acknowledged = {publisher.qos: set() for publisher in publishers}
    for publisher in publishers:
        acknowledged[publisher.qos] |= publisher.acknowledged()
    expected = set().union(*acknowledged.values())
    assert all(len(payloads) > 200 for payloads in acknowledged.values()), \
        f"too little traffic: {({qos: len(payloads) for qos, payloads in acknowledged.items()})}"
    counts: collections.Counter = collections.Counter()
    deadline = time.monotonic() + 20
    while not expected <= counts.keys() and time.monotonic() < deadline:
        try:
            counts[subscriber.received.get(timeout=0.5).payload] += 1
        except queue.Empty:
            pass
    missing = expected - counts.keys()
    assert not missing, f"{len(missing)} of {len(expected)} acknowledged messages lost, " \
                        f"e.g. {sorted(missing)[:5]}"
    twice = [payload for payload in acknowledged[2] if counts[payload] > 1]
    assert not twice, f"{len(twice)} QoS 2 messages delivered more than once, e.g. {twice[:5]}"


def shard_of(client_id: str, workers: int = 2) -> int:
    """The worker whose registry shard owns the client id (crc32, as the broker)."""
    return zlib.crc32(client_id.encode()) % workers


def test_a_restarted_registry_shard_still_knows_who_holds_a_client_id(make_node):
    """The shard of a client id dies and comes back: it learns the holders from
    its peers before it answers, so a CONNECT there takes the live session over."""
    node = make_node(**{"queue.storage": "disc"})
    client_id = unique("held")
    while shard_of(client_id) != 1:
        client_id = unique("held")
    topic = unique("t")
    old = connect(node.ports[0], client_id, clean_start=False, properties=PERSISTENT)
    old.subscribe(topic, 1)
    os.kill(node.pids[1], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not re.search(r"worker 1 restarted", node.broker.log()):
        assert time.monotonic() < deadline, "worker 1 did not come back"
        time.sleep(0.05)
    new = connect(node.ports[1], client_id, clean_start=False, properties=PERSISTENT)
    assert new.connack.session_present
    assert old.wait_closed(), "two connections hold one client id"
    assert old.disconnect_reason == 0x8E
    publisher = connect(node.ports[0], unique("pub"))
    routed(publisher, topic, new)
    publisher.publish(topic, b"once", qos=1)
    assert new.expect_one().payload == b"once"
    new.expect_none(0.3)


def test_a_publisher_held_back_by_the_dead_workers_subscriber_loses_nothing(make_node):
    """A publisher on the survivor held back (flow control) by the full queue of a
    subscriber on the worker that dies goes on the moment the survivor hears of
    the death: what it sends then is still routed to the dead worker, so it waits
    in that worker's limbo and reaches the session once taken over."""
    node = make_node(**{**UNLIMITED_DISC, "queue.max_online_messages": "100",
                        "queue.max_publisher_hold": "60s"})
    client_id, topic = unique("stalled"), unique("held")
    stalled = connect(node.ports[0], client_id, clean_start=False, manual_ack=True,
                      properties={**PERSISTENT, "receive_maximum": 1})
    stalled.subscribe(topic, 1)
    publisher = connect(node.ports[1], unique("pub"))
    routed(publisher, topic, stalled)
    sent = [publisher.publish(topic, str(n).encode(), qos=1, wait=False) for n in range(300)]
    published, deadline = -1, time.monotonic() + 10
    while published != (published := sum(info.is_published() for info in sent)):
        assert time.monotonic() < deadline, "the publisher was never held back"
        time.sleep(0.5)
    assert published < len(sent), "the publisher was not held back"

    os.kill(node.pids[0], signal.SIGKILL)
    assert stalled.wait_closed(), "the killed worker's client kept its connection"
    for info in sent:
        info.wait_for_publish(10)
    acknowledged = {str(n).encode() for n, info in enumerate(sent)
                    if info.is_published() and publisher.publish_codes.get(info.mid, 0) < 0x80}
    assert len(acknowledged) > published, "nothing was published after the hold"
    back = connect(node.ports[1], client_id, clean_start=False, properties=PERSISTENT)
    got = {m.payload for m in stalled.drain(quiet=0.1) + back.drain(quiet=1.0)}
    missing = acknowledged - got
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged messages lost, " \
                        f"e.g. {sorted(missing, key=int)[:5]}"


def test_a_moving_session_gets_each_qos2_message_once_beside_other_subscribers(make_node):
    """Other subscribers of the same topics on both workers: a peer then routes a
    message both to the session's old owner (which forwards it) and to its new
    owner (for the others) while the move is under way; the session must get it
    from one of them only."""
    node = make_node(**UNLIMITED_DISC)
    subscriber = MovingSubscriber(unique("sub"))
    base = unique("moving")
    first = subscriber.connect(node.ports[0])
    assert first.subscribe(f"{base}/#", 2) == [2]
    others = [connect(port, unique("other")) for port in node.ports]
    for other in others:
        other.subscribe(f"{base}/#", 2)
    for port in node.ports:
        probe = connect(port, unique("probe"))
        routed(probe, f"{base}/probe", first, *others)
        probe.disconnect()
    publishers = [Publisher(port, f"{base}/q2", 2) for port in node.ports]
    for publisher in publishers:
        publisher.start()
    for move in range(6):
        time.sleep(MOVE_EVERY / 2)
        subscriber.take_over(node.ports[(move + 1) % 2])
    time.sleep(MOVE_EVERY / 2)
    every_acknowledged_message_delivered_once(publishers, subscriber)
