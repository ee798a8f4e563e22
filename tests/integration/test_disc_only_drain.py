"""The drain of a disc_only queue, at one worker and at two (where the
subscriber comes back on the other worker than the one holding its session,
through `listener.tcp.worker_ports`, so the session is handed over with its
queue in LMDB and drained there): a backlog of more than two pages, mixing rows that go out as stored
(QoS 1 and 2 without properties) with rows that are decoded (MQTT 5
properties, a message expiry, QoS 0), arrives once each, in order, with its
QoS, its properties and its counted-down expiry, to an MQTT 5 and to an
MQTT 3.1.1 subscriber."""

import pytest

from actormq.transport.codec import Puback, Pubcomp, Publish, Pubrec, Pubrel

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.integration.hookplugins import worker_ports
from tests.integration.rawclient import RawClient

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]
COUNT = 2300    # more than two pages of the disc_only window (1,000)
EXPIRY = 3600
PERSISTENT = {"session_expiry_interval": 3600}


@pytest.fixture(scope="module", params=[1, 2], ids=["w1", "w2"])
def disc_only_broker(request, tmp_path_factory):
    actormq_only("queue.storage=disc_only")
    workers = request.param
    settings = {"queue.storage": "disc_only", "queue.max_offline_messages": 0}
    if workers > 1:
        settings["listener.tcp.worker_ports"] = "true"
    broker = start_broker(tmp_path_factory.mktemp("disc_only"), workers=workers, settings=settings)
    broker.ports = worker_ports(broker, workers) if workers > 1 else (broker.port,)
    yield broker
    broker.stop()


def published(n: int, topic: str) -> tuple:
    """Message n: (topic, payload, qos, properties); every fifth of a kind."""
    kind = n % 5
    payload = b"%d:" % n + b"x" * (n % 300)     # remaining lengths of one and two bytes
    if kind == 0:
        return topic, payload, 1, {}
    if kind == 1:
        return f"{topic}/two", payload, 2, {}
    if kind == 2:
        return topic, payload, 1, {"content_type": "text/plain", "correlation_data": b"c%d" % n,
                                   "user_property": [("n", str(n)), ("kind", "props")]}
    if kind == 3:
        return topic, payload, 1, {"message_expiry_interval": EXPIRY}
    return topic, payload, 0, {}


def streams(messages: list[tuple]) -> dict:
    """(topic, qos) -> its payloads in order: MQTT orders the messages of one
    topic and QoS."""
    by_stream: dict = {}
    for topic, payload, qos in messages:
        by_stream.setdefault((topic, qos), []).append(payload)
    return by_stream


def publish_backlog(port: int, topic: str, in_flight: int = 20) -> list[tuple]:
    """Publish every message in order, `in_flight` at a time, each acknowledged
    (PUBACK, or PUBREC, PUBREL, PUBCOMP) before the next lot."""
    messages = [published(n, topic) for n in range(COUNT)]
    publisher = RawClient(port)
    publisher.connect(unique("pub"))
    for first in range(0, COUNT, in_flight):
        lot = messages[first:first + in_flight]
        publisher.send(*(Publish(t, payload, qos, packet_id=first + n + 1 if qos else None, properties=props)
                         for n, (t, payload, qos, props) in enumerate(lot)))
        unacknowledged = sum(1 for _, _, qos, _ in lot if qos)
        while unacknowledged:
            ack = publisher.recv(timeout=30)
            if isinstance(ack, Pubrec):
                publisher.send(Pubrel(ack.packet_id))
            else:
                assert isinstance(ack, (Puback, Pubcomp)) and ack.reason_code < 0x80, ack
                unacknowledged -= 1
    publisher.disconnect()
    return messages


@pytest.mark.parametrize("version", [5, 4], ids=["v5", "v311"])
def test_a_disc_only_backlog_drains_once_in_order_with_its_properties(disc_only_broker, version):
    first, *others = disc_only_broker.ports
    comeback = others[0] if others else first
    client_id, topic = unique("drained"), unique("backlog")
    subscriber = connect(first, client_id, version, clean_start=False,
                         properties=PERSISTENT if version == 5 else None)
    subscriber.subscribe(f"{topic}/#", 2)
    subscriber.subscribe(topic, 2)
    subscriber.disconnect()
    messages = publish_backlog(first, topic)

    back = connect(comeback, client_id, version, clean_start=False,
                   properties=PERSISTENT if version == 5 else None)
    assert back.connack.session_present
    received = back.expect(COUNT, timeout=60)
    assert streams([(m.topic, m.payload, m.qos) for m in received]) == \
        streams([(t, p, q) for t, p, q, _ in messages])
    assert not any(m.dup for m in received)
    sent_by_payload = {payload: props for _, payload, _, props in messages}
    for got in received:
        sent = sent_by_payload[got.payload]
        if version != 5:
            assert got.properties == {}
        elif "message_expiry_interval" in sent:
            assert EXPIRY - 60 <= got.properties.pop("message_expiry_interval") <= EXPIRY
            assert got.properties == {}
        else:
            assert got.properties == sent
    # nothing more: the next message on the same path is the one that comes next
    connect(first, unique("pub")).publish(topic, b"after", 1)
    last = back.expect_one(timeout=10)
    assert (last.topic, last.payload) == (topic, b"after")
