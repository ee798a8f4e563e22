"""What an idle connected client holds (`core_harness`: the broker core
in-process): no table, list or instance dict of its own until it uses one,
the shared empties it holds instead stay empty however busy the clients
beside it are (a memory queue and the decoder between packets are shared
too), and the Python heap of an idle client (its Connection, its Session or
a clean client's IdleSession; the socket's transport is the event loop's and
not counted here) stays within a budget; clients of one keepalive share its
deadline value and keep one time of their own."""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import replace

import pytest

from actormq.actors import connection, queue, session
from actormq.actors.connection import Connection
from actormq.transport.codec import (Connect, Puback, Pubcomp, Publish, Pubrec, Pubrel, Suback, Subscribe,
                                     Subscription, encode)
from actormq.transport.codec.decode import NO_PROPERTIES
from actormq.transport.listeners import DEFAULT_LISTENER
from tests.unit.core_harness import Core, Wire

# bytes: 1,004 measured with the test's Client and Wire for a persistent client, 784 for a
# clean one (an IdleSession instead of a Session); 1,041 before the shared last-seen time and
# the TCP peer's address left to the transport (1,596 before the idle queue, the shared
# decoder and kept CONNECT, the packed address, a Session without `__dict__`; 1,129 before
# the Connection's rarely set attributes became class defaults)
IDLE_CLIENT_BUDGET = 1_040
IDLE_CLEAN_CLIENT_BUDGET = 820


@pytest.fixture
def core():
    started = Core()
    yield started
    started.close()


def _shared_empties_are_empty() -> None:
    assert session.NONE_YET == {}
    assert connection.NOTHING_TO_SEND == ()
    assert dict(queue.NOTHING_RELEASED) == {}
    assert NO_PROPERTIES == {}


def test_an_idle_client_holds_shared_empties(core):
    client = core.client(4)
    client.connect("idle", clean_start=False)
    conn = client.conn
    held = conn.session
    assert held._inflight is session.NONE_YET
    assert held._awaiting_pubcomp is session.NONE_YET and held._qos2_in is session.NONE_YET
    assert held.subscriptions is session.NONE_YET
    assert held.queue is core.broker.idle_queue     # no queue of its own
    assert held.queue.released is queue.NOTHING_RELEASED
    assert conn.decoder.shared                      # nor a decoder
    assert conn._out is connection.NOTHING_TO_SEND         # the CONNACK went out
    assert conn.connect_packet.properties is NO_PROPERTIES
    assert "__dict__" not in dir(held) or not vars(held)     # no instance dict was made
    assert vars(conn) == {}     # what few clients set (hooks, limits, aliases) stayed class defaults
    assert conn.slot is None and conn.client_info is None and conn.problem_info is True


def test_busy_clients_get_tables_of_their_own_and_leave_the_shared_ones_empty(core):
    idle = core.client(5)
    idle.connect("idle")
    subscriber = core.client(5)
    subscriber.connect("sub")
    subscriber.send(Subscribe(1, (Subscription("t/#", 2),)))
    assert subscriber.received() == [Suback(1, (2,))]
    publisher = core.client(5)
    publisher.connect("pub")
    publisher.send(Publish("t/2", b"two", 2, packet_id=7), Publish("t/1", b"one", 1, packet_id=8))
    assert publisher.received() == [Pubrec(7), Puback(8)]
    assert publisher.conn.session._qos2_in is not session.NONE_YET     # 7 awaits PUBREL
    _shared_empties_are_empty()
    publisher.send(Pubrel(7))
    assert publisher.received() == [Pubcomp(7)]

    delivered = subscriber.received()
    assert [(p.topic_name, p.qos) for p in delivered] == [("t/2", 2), ("t/1", 1)]
    assert subscriber.conn.session.subscriptions == {"t/#": subscriber.conn.session.subscriptions["t/#"]}
    assert len(subscriber.conn.session._inflight) == 2
    _shared_empties_are_empty()
    two, one = (p.packet_id for p in delivered)
    subscriber.send(Pubrec(two), Puback(one))
    assert subscriber.received() == [Pubrel(two)]
    assert subscriber.conn.session._awaiting_pubcomp == {two: None}
    _shared_empties_are_empty()
    subscriber.send(Pubcomp(two))
    assert subscriber.conn.session.inflight_count() == 0
    _shared_empties_are_empty()
    assert idle.conn.session.subscriptions is session.NONE_YET
    assert idle.received() == []


@pytest.mark.parametrize("clean_start, budget", ((False, IDLE_CLIENT_BUDGET), (True, IDLE_CLEAN_CLIENT_BUDGET)))
def test_the_python_heap_of_an_idle_client_stays_within_its_budget(core, clean_start, budget):
    count = 300
    warm = core.client(4)
    warm.connect("warm-up")    # what the first client loads is not per client
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        clients = [core.client(4) for _ in range(count)]
        for number, client in enumerate(clients):
            client.connect(f"idle-client-{number:05d}", clean_start=clean_start)
            client.decoder = client.wire.written = None     # the test's side, not the broker's
        gc.collect()
        per_client = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert per_client <= budget, f"{per_client:,.0f} bytes per idle client"


def test_clients_of_one_keepalive_share_its_deadline_and_keep_one_time(core):
    first, second = core.client(4), core.client(5)
    first.connect("first")
    second.connect("second")
    assert first.conn.keepalive_deadline == 60 * 1.5
    assert first.conn.keepalive_deadline is second.conn.keepalive_deadline
    assert first.conn.accepted_at is first.conn.last_seen     # the accept time goes once the session is open


def test_idle_clients_share_a_decoder_until_a_packet_arrives_in_parts(core):
    first, second = core.client(5), core.client(5)
    first.connect("first")
    second.connect("second")
    shared = first.conn.decoder
    assert shared.shared and second.conn.decoder is shared
    first.send(Subscribe(1, (Subscription("t/#", 1),)))
    assert first.received() == [Suback(1, (1,))]
    packet = encode(Publish("t/1", b"x" * 100, 1, packet_id=5), 5)
    second.send_bytes(packet[:40])          # a partial packet takes a decoder of its own
    assert second.conn.decoder is not shared and not shared.holds_partial
    assert second.received() == [] and first.received() == []
    second.send_bytes(packet[40:])
    assert second.received() == [Puback(5)]
    assert [(p.topic_name, p.payload) for p in first.received()] == [("t/1", b"x" * 100)]
    assert first.conn.decoder is shared      # the other kept the shared one


def test_a_memory_queue_is_the_idle_one_until_a_message_waits(core):
    subscriber = core.client(4)
    subscriber.connect("offline-sub", clean_start=False)
    subscriber.send(Subscribe(1, (Subscription("q/#", 1),)))
    assert subscriber.received() == [Suback(1, (1,))]
    held = subscriber.conn.session
    assert held.queue is core.broker.idle_queue
    subscriber.drop()
    publisher = core.client(4)
    publisher.connect("pub")
    publisher.send(Publish("q/1", b"kept", 1, packet_id=1))
    assert publisher.received() == [Puback(1)]
    assert held.queue is not core.broker.idle_queue and len(held.queue) == 1
    assert len(core.broker.idle_queue) == 0
    back = core.client(4)
    back.send(Connect("offline-sub", protocol_level=4, clean_start=False))
    connack, delivered = back.received()
    assert connack.session_present and (delivered.topic_name, delivered.payload) == ("q/1", b"kept")


def test_a_tcp_client_leaves_its_address_to_the_transport_and_others_keep_theirs(core):
    client = core.client(4)
    client.connect("tcp-peer")
    assert client.conn.peer == "127.0.0.1:50000" and client.conn.peer_port == 50000
    assert client.conn.peer_address is None         # the event loop's TCP transport keeps it
    websocket = Connection(core.broker, replace(DEFAULT_LISTENER, type="ws"))
    websocket.connection_made(Wire(("10.1.2.3", 40000)))
    assert websocket.peer == "10.1.2.3:40000"
    websocket.transport = Wire(None)                # its transport forgot: the address was kept
    assert (websocket.peer_host, websocket.peer_port) == ("10.1.2.3", 40000)
