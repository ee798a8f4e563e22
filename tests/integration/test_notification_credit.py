"""Notifications across the sender's credit running out and coming back, on a real broker with
a real HTTP endpoint and a real ExHook server: while the sender holds all the worker may hand
it, the worker drops every event and counts it; the credit comes back with the sender's
report (the worker's loop takes it when it arrives, it does not poll), and the events after
that are handed over again and arrive with their exact bodies. Delivered and dropped add up
to exactly what was published."""

from __future__ import annotations

import base64
import re
import threading
import time

import pytest

from tests.exhook_provider import ProviderServer
from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.integration.test_notification_delivery import sender_up, webhook_stats
from tests.webhook_endpoint import Endpoint, Scripted

pytestmark = pytest.mark.timeout(90)

CREDIT = 10
FLOOD = 60          # published while the sender's credit is spent: most of them dropped
AFTER = 5           # published one by one once the credit came back


def _wait(what, predicate, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return value


def flood(publisher, prefix: str, payload: bytes) -> None:
    """FLOOD messages to `prefix/<n>` with `payload % n`, at once: QoS 0 but the last one, QoS 1
    and waited for (all are in)."""
    for number in range(FLOOD):
        last = number == FLOOD - 1
        publisher.publish(f"{prefix}/{number}", payload % number, qos=1 if last else 0, wait=last)


def test_webhook_events_dropped_without_credit_are_counted_and_later_ones_arrive_exactly(tmp_path):
    actormq_only("webhooks are actormq's")
    held = threading.Event()
    held.set()
    endpoint = Endpoint().start()
    # one connection, each answer held 0.5 s while `held`: the credit is spent at once
    endpoint.respond = lambda hook, body: Scripted({}, delay=0.5) if held.is_set() else None
    broker = start_broker(tmp_path, settings={"webhooks.p.hook": "on_publish", "webhooks.p.endpoint": endpoint.url,
                                              "webhooks.queue_size": str(CREDIT),
                                              "webhooks.pool_max_connections": "1"})
    try:
        sender_up(broker)
        publisher = connect(broker.port, unique("pub"), version=4)
        flood(publisher, "flood", b"f%d")
        held.clear()
        stats = _wait("the sender never reported the first ones sent",
                      lambda: (s := webhook_stats(broker)).get("sent", 0) + s.get("dropped", 0) == FLOOD and s)
        assert 0 < stats["dropped"] <= FLOOD - CREDIT and stats.get("failed", 0) == 0, stats
        for number in range(AFTER):     # each once the one before arrived: credit is back for it
            publisher.publish(f"after/{number}", b"a%d" % number, qos=1, wait=True)
            endpoint.wait_body("on_publish", lambda body, n=number: body["topic"] == f"after/{n}")
        bodies = endpoint.bodies("on_publish")
        for number in range(AFTER):
            assert [body for body in bodies if body["topic"] == f"after/{number}"] == [{
                "username": None, "client_id": publisher.client_id, "mountpoint": "", "qos": 1,
                "topic": f"after/{number}", "payload": base64.b64encode(b"a%d" % number).decode(),
                "retain": False}]
        flooded = [body["topic"] for body in bodies if body["topic"].startswith("flood/")]
        assert len(flooded) == len(set(flooded)) == FLOOD - stats["dropped"]
        final = _wait("the sender never reported the last ones sent",
                      lambda: (s := webhook_stats(broker)).get("sent", 0) == FLOOD + AFTER - stats["dropped"] and s)
        assert final.get("dropped") == stats["dropped"], final
    finally:
        broker.stop()
        endpoint.stop()


def test_exhook_events_dropped_without_credit_are_counted_and_later_ones_arrive_exactly(tmp_path):
    actormq_only("ExHook is actormq's")
    server = ProviderServer({"message.publish": []}, tmp_path / "provider.log").start()
    broker = start_broker(tmp_path, settings={"exhook.server.p.url": server.url,
                                              "exhook.server.p.message_publish": "notify",
                                              "exhook.queue_size": str(CREDIT)})
    published = 0
    try:
        sender_up(broker)
        publisher = connect(broker.port, unique("pub"), version=4)
        # the server answers a "slow/" message after the milliseconds its payload starts with: the
        # first ones take the credit for 0.8 s each, the rest of the flood finds none
        flood(publisher, "slow", b"800:%d")
        published += FLOOD
        for number in range(AFTER):
            topic = f"after/{number}"
            deadline = time.monotonic() + 30
            while True:     # one published before the credit is back is dropped: publish it again
                publisher.publish(topic, b"a%d" % number, qos=1, wait=True)
                published += 1
                if _arrived(server, topic, 1.0):
                    break
                assert time.monotonic() < deadline, f"no notification of {topic}"
        # one client's notifications go out in order: the slow ones are all answered by now
        requests = server.requests("OnMessagePublish")
        for number in range(AFTER):
            message = [r["message"] for r in requests if r["message"]["topic"] == f"after/{number}"][-1]
            assert (message["from"], base64.b64decode(message["payload"]), message.get("qos", 0)) == \
                (publisher.client_id, b"a%d" % number, 1)
    finally:
        broker.stop()
        server.kill()
    dropped = [int(count) for count in re.findall(r"exhook server p: (\d+) notifications dropped", broker.log())]
    # one line per notifier the plugin used (the worker's own one until the sender was up)
    assert sum(dropped) > 0, broker.log()[-2000:]
    assert len(server.requests("OnMessagePublish")) + sum(dropped) == published, broker.log()[-2000:]


def _arrived(server: ProviderServer, topic: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(r["message"]["topic"] == topic for r in server.requests("OnMessagePublish")):
            return True
        time.sleep(0.05)
    return False
