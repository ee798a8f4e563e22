"""Claims of a client id across the workers of `actormq run -w 2`: however the
CONNECTs for one client id interleave over the workers (one after the other
on one worker, at once on both, clean or persistent), exactly one connection
keeps the client id; the others get DISCONNECT 0x8E (5.0) and are closed, and
nothing is routed to them afterwards."""

from __future__ import annotations

import time

import pytest

from actormq.transport.codec import Connack, Connect, Disconnect, Puback, Publish, Subscribe, Subscription
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient
from tests.integration.test_handover import shard_of
from tests.integration.test_workers import make_node  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(60)

ROUNDS = 10
CONNECTS = 6        # per round, alternately on worker 0 and worker 1
QUIET = 0.3         # seconds the survivor of a round stays connected and silent


def client_id_of_shard(shard: int, prefix: str) -> str:
    while shard_of(client_id := unique(prefix)) != shard:
        pass
    return client_id


@pytest.mark.parametrize("shard", [0, 1])
def test_a_takeover_on_one_worker_leaves_the_client_id_to_claim(make_node, shard):
    """Two CONNECTs one after the other on worker 0 (the second takes the first
    over), then one on worker 1: the client id's registry entry names worker 0
    still, so the connection there is taken over too."""
    node = make_node()
    client_id = client_id_of_shard(shard, "again")
    first = connect(node.ports[0], client_id)
    second = connect(node.ports[0], client_id)
    assert first.wait_closed() and first.disconnect_reason == 0x8E
    third = connect(node.ports[1], client_id)
    assert second.wait_closed(), "two connections hold one client id"
    assert second.disconnect_reason == 0x8E
    assert third.connack is not None


def _settle(clients: list[RawClient], within: float = 5.0) -> tuple[list[RawClient], dict]:
    """Read every client until all but one closed (or `within` passed) and the
    rest stayed quiet a moment: (the open ones, client -> packets it got)."""
    packets: dict[RawClient, list] = {client: [] for client in clients}
    closed: set[RawClient] = set()
    deadline = time.monotonic() + within
    quiet_until = None
    while time.monotonic() < deadline:
        for client in clients:
            if client in closed:
                continue
            while (packet := client.poll(0.01)) != "timeout":
                if packet is None:
                    closed.add(client)
                    break
                packets[client].append(packet)
        if len(closed) >= len(clients) - 1:
            quiet_until = quiet_until or time.monotonic() + QUIET
            if time.monotonic() >= quiet_until:
                break
    return [client for client in clients if client not in closed], packets


def _puback(publisher: RawClient, topic: str, packet_id: int) -> int:
    publisher.send(Publish(topic, b"probe", qos=1, packet_id=packet_id))
    while not isinstance(packet := publisher.recv(), Puback):
        pass
    assert packet.packet_id == packet_id
    return packet.reason_code


@pytest.mark.parametrize("version", [5, 4])
def test_a_storm_of_clean_connects_for_one_client_id_leaves_one(make_node, version):
    """Clean CONNECTs for one client id written on both workers at once, each
    with a SUBSCRIBE behind it: one connection keeps the client id, every other
    one is told 0x8E (5.0) and closed, and the subscriptions of the losers are
    gone on both workers (a 5.0 QoS 1 PUBLISH to them: 0x10, no subscribers)."""
    node = make_node()
    publishers = [RawClient(port) for port in node.ports]
    for publisher, port in zip(publishers, node.ports):
        publisher.connect(unique("pub"))
    packet_ids = iter(range(1, 65536))
    for attempt in range(ROUNDS):
        client_id = unique(f"storm{attempt}-")
        clients = [RawClient(node.ports[n % 2], version) for n in range(CONNECTS)]
        for n, client in enumerate(clients):
            client.send(Connect(client_id, protocol_level=version, clean_start=True, keepalive=60),
                        Subscribe(1, (Subscription(f"{client_id}/{n}", 1),)))
        live, packets = _settle(clients)
        assert len(live) == 1, f"attempt {attempt}: {len(live)} connections kept {client_id}"
        for n, client in enumerate(clients):
            got = packets[client]
            assert got and isinstance(got[0], Connack) and got[0].reason_code == 0, got
            if client is live[0]:
                continue
            if version == 5 and len(got) > 1:
                assert isinstance(got[-1], Disconnect) and got[-1].reason_code == 0x8E, got
            for publisher in publishers:
                deadline = time.monotonic() + 3
                while _puback(publisher, f"{client_id}/{n}", next(packet_ids)) != 0x10:
                    assert time.monotonic() < deadline, f"a route of a lost connection of {client_id}"
        winner = clients.index(live[0])
        for publisher in publishers:
            assert _puback(publisher, f"{client_id}/{winner}", next(packet_ids)) == 0
            assert live[0].expect(Publish).topic_name == f"{client_id}/{winner}"
        for client in clients:
            client.close()
