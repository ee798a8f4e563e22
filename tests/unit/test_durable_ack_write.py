"""The acknowledgements a commit releases (PUBACK/PUBREC of messages queued
to disc for an offline persistent session) go to the publisher as one write,
in order, byte for byte what one write per packet sends, and are counted per
packet (the packet counters of $SYS and the metrics); one with a reason code
among them is sent as its own packet, still in order."""

from __future__ import annotations

import asyncio

import pytest

from actormq.actors.broker import Broker
from actormq.actors.connection import Connection
from actormq.conf.load import load_config
from actormq.storage.stores import open_stores
from actormq.transport.codec import Connect, Publish, Subscribe, encode
from actormq.transport.codec.packets import Subscription

from tests.unit.core_harness import Wire


class WriteCounting(Wire):
    """A Wire that also counts the writes."""

    def __init__(self, peer: tuple) -> None:
        super().__init__(peer)
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


@pytest.fixture
def disc_broker(tmp_path):
    loop = asyncio.new_event_loop()
    config = load_config(env={}, overrides={"sys_interval": "0", "storage.dir": str(tmp_path),
                                            "queue.storage": "disc", "storage.sync": "off"})
    stores = open_stores(str(tmp_path), "ram", "disc", sync=False, log=True)
    broker = Broker(config, loop, stores)
    stores.commit_on(loop)
    yield broker
    stores.close()
    loop.close()


def settle(broker) -> None:
    for _ in range(3):
        broker.loop.run_until_complete(asyncio.sleep(0))


def connect(broker, client_id: str, version: int, port: int, clean: bool) -> tuple:
    wire = WriteCounting(("127.0.0.1", port))
    conn = Connection(broker)
    conn.connection_made(wire)
    properties = {} if version == 4 or clean else {"session_expiry_interval": 3600}
    conn.data_received(encode(Connect(client_id, protocol_level=version, clean_start=clean,
                                      properties=properties), version))
    settle(broker)
    return wire, conn


def offline_subscriber(broker, version: int) -> None:
    wire, conn = connect(broker, "sub", version, 50001, clean=False)
    conn.data_received(encode(Subscribe(1, (Subscription("queued/#", 2),)), version))
    settle(broker)
    wire.closed = True
    conn.connection_lost(None)
    settle(broker)


def test_the_acks_of_a_commit_are_one_write_in_order_and_counted_per_packet(disc_broker):
    offline_subscriber(disc_broker, 4)
    wire, conn = connect(disc_broker, "pub", 4, 50002, clean=True)
    sent_before = list(disc_broker.packets.sent)
    bytes_before = list(disc_broker.packets.sent_bytes)
    read = b"".join(encode(Publish("queued/a", b"m%d" % n, qos, packet_id=n), 4)
                    for n, qos in ((1, 1), (2, 2), (3, 1), (4, 1), (5, 2)))
    written_before, writes_before = len(wire.written), wire.writes
    conn.data_received(read)
    settle(disc_broker)
    assert bytes(wire.written[written_before:]) == bytes.fromhex(
        "40020001" "50020002" "40020003" "40020004" "50020005")
    assert wire.writes - writes_before == 1
    sent = [after - before for after, before in zip(disc_broker.packets.sent, sent_before)]
    sizes = [after - before for after, before in zip(disc_broker.packets.sent_bytes, bytes_before)]
    assert (sent[4], sent[5], sizes[4], sizes[5]) == (3, 2, 12, 8)
    assert sum(sent) == 5
    assert len(disc_broker.sessions["sub"].queue) == 5


def test_an_ack_with_a_reason_code_goes_out_in_its_place(disc_broker):
    offline_subscriber(disc_broker, 5)
    wire, conn = connect(disc_broker, "pub5", 5, 50003, clean=True)
    written_before = len(wire.written)
    read = b"".join((encode(Publish("queued/a", b"x", 1, packet_id=7), 5),
                     encode(Publish("nobody/here", b"y", 1, packet_id=8), 5),
                     encode(Publish("queued/b", b"z", 1, packet_id=9), 5)))
    conn.data_received(read)
    settle(disc_broker)
    # 0x10: no matching subscribers, held behind the first one's commit
    assert bytes(wire.written[written_before:]) == bytes.fromhex("40020007" "4003000810" "40020009")
