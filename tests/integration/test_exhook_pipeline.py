"""ExHook `message.publish` as a decision, pipelined: a publisher's PUBLISHes are asked of a
real HookProvider (grpc.aio, its own process) several at a time, and their outcomes are
applied in the order they were sent — PUBACKs, routing, a rewrite and a drop — even when
later answers come first; a SUBSCRIBE sent behind them is answered after them."""

from __future__ import annotations

import time

import pytest

from actormq.transport.codec import Puback, Publish, Suback, Subscribe, Subscription
from tests.exhook_provider import ProviderServer
from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)

SLOW, FAST = 150, 5          # ms the server takes for even / odd messages


@pytest.fixture
def provider(tmp_path):
    actormq_only("ExHook is actormq's")
    server = ProviderServer({"message.publish": ["slow/#", "t/#"]}, tmp_path / "provider.log").start()
    yield server
    server.kill()


def test_publish_decisions_overlap_and_outcomes_keep_their_order(tmp_path, provider):
    broker = start_broker(tmp_path, settings={"exhook.server.default.url": provider.url,
                                              "exhook.request_timeout": "5s"})
    try:
        subscriber = connect(broker.port, unique("sub"))
        subscriber.subscribe("slow/#", qos=1)
        subscriber.subscribe("t/#", qos=1)
        publisher = RawClient(broker.port)
        publisher.connect(unique("pub"))
        sent = []
        for number in range(1, 21):
            topic = {6: "t/rewrite", 10: "t/drop"}.get(number, f"slow/{number}")
            sent.append(Publish(topic, f"{SLOW if number % 2 else FAST}:{number}".encode(), qos=1,
                                packet_id=number))
        sent.append(Subscribe(100, (Subscription("late/#", 1),)))
        sent.append(Publish("slow/21", f"{FAST}:21".encode(), qos=1, packet_id=21))
        started = time.monotonic()
        publisher.send(*sent)
        answers = [publisher.recv(timeout=10) for _ in range(22)]
        took = time.monotonic() - started
        order = [("suback" if isinstance(a, Suback) else a.packet_id) for a in answers
                 if isinstance(a, (Puback, Suback))]
        assert order == [*range(1, 21), "suback", 21]
        got = subscriber.expect(20, timeout=10)
        expected = [p.topic_name for p in sent if isinstance(p, Publish) and p.topic_name != "t/drop"]
        assert [m.topic for m in got] == [t.replace("t/rewrite", "t/rewritten") for t in expected]
        assert [m.payload for m in got] == [p.payload for p in sent
                                            if isinstance(p, Publish) and p.topic_name != "t/drop"]
        assert provider.most_in_flight("OnMessagePublish") > 4       # asked several at a time
        assert took < 10 * SLOW / 1000          # one at a time, the slow ones alone take 1.5 s
        publisher.close()
    finally:
        broker.stop()
