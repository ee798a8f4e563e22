"""What the notification sender process does with `on_publish` events (a real HTTP endpoint)
and ExHook `message.publish` notifications (a real gRPC HookProvider), on a real broker: when
it keeps up, every notification arrives once and a client's arrive in the order it published;
when the endpoint is too slow, every notification it did not send — the ones the worker
dropped for want of credit and the ones still waiting in the sender when the broker stops —
is counted as dropped."""

from __future__ import annotations

import re
import time

import psutil
import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.integration.mgmtapi import call
from tests.exhook_provider import ProviderServer
from tests.webhook_endpoint import Endpoint

pytestmark = pytest.mark.timeout(90)

SENDER = "actormq.webhooks.sender"


def sender_up(broker, timeout_s: float = 20.0) -> None:
    """Until the broker's notification sender runs below it (it lowers its priority once it
    serves): before, the worker sends notifications itself."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        senders = [process for process in psutil.Process(broker.proc.pid).children(recursive=True)
                   if SENDER in " ".join(process.cmdline())]
        if senders and all(process.nice() > 0 for process in senders):
            return
        time.sleep(0.05)
    raise AssertionError("the notification sender did not come up")


def webhook_stats(broker) -> dict[str, int]:
    status, body = call(broker, "POST", "/api/v4/admin/webhooks.stats", body={})
    assert status == 200, body
    return {row["stat"]: row["value"] for row in body["data"] if row["hook"] == ""}


def publish_in_turns(broker, prefix: str, count: int) -> list:
    """Three 3.1.1 publishers that publish `count` QoS 1 messages each, in turns, to
    `prefix/<client id>/<n>`, then one to `prefix/<client id>/last`."""
    publishers = [connect(broker.port, unique(f"pub{index}"), version=4) for index in range(3)]
    for number in range(count):
        for publisher in publishers:
            publisher.publish(f"{prefix}/{publisher.client_id}/{number}", b"%d" % number, qos=1)
    for publisher in publishers:        # a last one each: what arrives before it is all there is
        publisher.publish(f"{prefix}/{publisher.client_id}/last", b"", qos=1)
    return publishers


def test_notifications_arrive_complete_and_in_each_clients_order(tmp_path):
    actormq_only("webhooks are actormq's")
    endpoint = Endpoint().start()
    broker = start_broker(tmp_path, settings={"webhooks.p.hook": "on_publish", "webhooks.p.endpoint": endpoint.url})
    try:
        sender_up(broker)
        publishers = publish_in_turns(broker, "order", 100)
        for publisher in publishers:
            endpoint.wait_body("on_publish", lambda body, p=publisher: body["topic"].endswith(
                f"{p.client_id}/last"), timeout=20)
        bodies = endpoint.bodies("on_publish")
        for publisher in publishers:
            topics = [body["topic"] for body in bodies if body["client_id"] == publisher.client_id]
            assert topics == [f"order/{publisher.client_id}/{number}" for number in [*range(100), "last"]]
        assert len(bodies) == 303
        deadline = time.monotonic() + 10
        while (stats := webhook_stats(broker)).get("sent", 0) < 303 and time.monotonic() < deadline:
            time.sleep(0.2)         # the sender reports its counters once a second
        assert stats.get("sent") == 303 and stats.get("dropped", 0) == 0 and stats.get("failed", 0) == 0, stats
    finally:
        broker.stop()
        endpoint.stop()


def test_exhook_notifications_arrive_complete_and_in_each_clients_order(tmp_path):
    actormq_only("ExHook is actormq's")
    server = ProviderServer({"message.publish": []}, tmp_path / "provider.log").start()
    broker = start_broker(tmp_path, settings={"exhook.server.p.url": server.url,
                                              "exhook.server.p.message_publish": "notify"})
    try:
        sender_up(broker)
        publishers = publish_in_turns(broker, "order", 50)
        for publisher in publishers:
            last = f"order/{publisher.client_id}/last"
            deadline = time.monotonic() + 20
            while last not in [r["message"]["topic"] for r in server.requests("OnMessagePublish")]:
                assert time.monotonic() < deadline, f"no notification of {last}"
                time.sleep(0.05)
        requests = server.requests("OnMessagePublish")
        for publisher in publishers:
            topics = [r["message"]["topic"] for r in requests if r["message"]["from"] == publisher.client_id]
            assert topics == [f"order/{publisher.client_id}/{number}" for number in [*range(50), "last"]]
        assert len(requests) == 153
    finally:
        broker.stop()
        server.kill()


def test_what_the_sender_still_holds_at_stop_is_counted_as_dropped(tmp_path):
    actormq_only("webhooks are actormq's")
    endpoint = Endpoint().start()
    endpoint.answer("on_publish", {}, delay=30)         # answers nothing while the test runs
    # 50 notifications may wait in the sender, one of them on its way: the rest are dropped by
    # the worker; at stop the sender drops its 50 and says so
    broker = start_broker(tmp_path, settings={"webhooks.p.hook": "on_publish", "webhooks.p.endpoint": endpoint.url,
                                              "webhooks.queue_size": "50",
                                              "webhooks.pool_max_connections": "1"})
    try:
        sender_up(broker)
        publisher = connect(broker.port, unique("pub"), version=4)
        for number in range(200):
            publisher.publish(f"held/{number}", b"x", qos=0)
        publisher.publish("held/last", b"x", qos=1, wait=True)     # all 201 are in
        endpoint.wait_for(1, hook="on_publish")     # the one on its way (no answer for 5 s)
    finally:
        broker.stop()
        endpoint.stop()
    dropped = [int(count) for count in re.findall(r"webhook \S+: (\d+) notifications dropped", broker.log())]
    assert dropped == [201], broker.log()[-2000:]


def test_a_notification_is_given_up_after_its_webhooks_response_timeout(tmp_path):
    actormq_only("webhooks are actormq's")
    endpoint = Endpoint().start()
    endpoint.answer("on_publish", {}, delay=30)         # answers nothing while the test runs
    broker = start_broker(tmp_path, settings={"webhooks.p.hook": "on_publish", "webhooks.p.endpoint": endpoint.url,
                                              "webhooks.p.response_timeout": "300"})
    try:
        sender_up(broker)
        publisher = connect(broker.port, unique("pub"), version=4)
        publisher.publish("slow/1", b"x", qos=1, wait=True)
        endpoint.wait_for(1, hook="on_publish")
        deadline = time.monotonic() + 4      # well before the 5 s default
        while "notification not delivered" not in broker.log():
            assert time.monotonic() < deadline, broker.log()[-2000:]
            time.sleep(0.05)
        assert "no answer within 0.3 s" in broker.log(), broker.log()[-2000:]
    finally:
        broker.stop()
        endpoint.stop()
