"""Every event is delivered or counted dropped, exactly, when the worker stands in for the
notification hooks: a real broker whose notification sender is suspended (SIGSTOP) takes a
flood of PUBLISHes; once the little credit it had is spent the chain runs the plugin's
stand-in (the hook is called for far fewer messages than were published), and after the
sender resumes the notifications it was handed arrive, the ones after it arrive too (the
hooks are called again), and what arrived plus what was counted dropped is what the hook
would have notified: for the `on_publish` webhook the 3.1.1 publisher's messages (not the
5.0 one's: no `on_publish_m5` is registered), for ExHook each server's own (not a topic its
filters leave out, never a `$SYS/` topic)."""

from __future__ import annotations

import json
import re
import time

import psutil
import pytest

from tests.exhook_provider import ProviderServer
from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.integration.mgmtapi import cli
from tests.integration.test_notification_delivery import SENDER, sender_up, webhook_stats
from tests.webhook_endpoint import Endpoint

pytestmark = pytest.mark.timeout(90)

CREDIT = 10
FLOOD = 200         # each publisher's messages while the sender is suspended
AFTER = 3           # messages published one by one once it runs again, each until it arrives


def suspend_sender(broker) -> psutil.Process:
    sender_up(broker)
    [sender] = [process for process in psutil.Process(broker.proc.pid).children(recursive=True)
                if SENDER in " ".join(process.cmdline())]
    sender.suspend()
    return sender


def flood(publisher, prefix: str, count: int = FLOOD) -> None:
    """`count` QoS 0 messages to `prefix/<n>`, the last one QoS 1 and waited for (all are in)."""
    for number in range(count):
        last = number == count - 1
        publisher.publish(f"{prefix}/{number}", b"%d" % number, qos=1 if last else 0, wait=last)


def hook_calls(broker, plugin: str) -> int:
    """How often the plugin's hooks were called (its one point here: message.publish)."""
    result = cli(broker, "plugin", "show", "--format", "json")
    assert result.returncode == 0, result.stderr
    return sum(row["calls"] for row in json.loads(result.stdout) if row["name"] == plugin)


def test_webhook_events_are_delivered_or_counted_dropped_exactly_while_stood_in_for(tmp_path):
    actormq_only("webhooks are actormq's")
    endpoint = Endpoint().start()
    broker = start_broker(tmp_path, settings={"webhooks.p.hook": "on_publish", "webhooks.p.endpoint": endpoint.url,
                                              "webhooks.queue_size": str(CREDIT)})
    try:
        sender = suspend_sender(broker)
        try:
            v4, v5 = connect(broker.port, unique("pub4"), version=4), connect(broker.port, unique("pub5"), version=5)
            flood(v4, "flood")
            flood(v5, "m5")
            assert hook_calls(broker, "webhooks") < FLOOD // 2      # the stand-in counted the rest
        finally:
            sender.resume()
        after = sum(publish_until_arrived(v4, f"after/{number}", lambda topic: any(
            body["topic"] == topic for body in endpoint.bodies("on_publish"))) for number in range(AFTER))
        deadline = time.monotonic() + 20
        while (stats := webhook_stats(broker)).get("sent", 0) != len(endpoint.bodies("on_publish")) and \
                time.monotonic() < deadline:
            time.sleep(0.2)         # the sender reports its counters once a second
        topics = [body["topic"] for body in endpoint.bodies("on_publish")]
        flooded = [topic for topic in topics if topic.startswith("flood/")]
        assert len(flooded) == len(set(flooded)) and all(topic.startswith(("flood/", "after/")) for topic in topics)
        assert stats["sent"] + stats["dropped"] == FLOOD + after and stats.get("failed", 0) == 0, stats
        assert stats["dropped"] >= FLOOD - CREDIT, stats
    finally:
        broker.stop()
        endpoint.stop()


def test_exhook_events_are_delivered_or_counted_dropped_exactly_per_server_while_stood_in_for(tmp_path):
    actormq_only("ExHook is actormq's")
    servers = {"all": ProviderServer({"message.publish": []}, tmp_path / "all.log").start(),
               "some": ProviderServer({"message.publish": ["flood/#"]}, tmp_path / "some.log").start()}
    settings = {"exhook.queue_size": str(CREDIT)}
    for name, server in servers.items():
        settings |= {f"exhook.server.{name}.url": server.url, f"exhook.server.{name}.message_publish": "notify"}
    broker = start_broker(tmp_path, settings=settings)
    try:
        sender = suspend_sender(broker)
        try:
            publisher = connect(broker.port, unique("pub"), version=4)
            for prefix in ("flood", "other", "$SYS/x"):     # "some" wants flood/ only, no one $SYS/
                flood(publisher, prefix)
            assert hook_calls(broker, "exhook") < FLOOD // 2
        finally:
            sender.resume()
        after = sum(publish_until_arrived(publisher, f"flood/after/{number}", lambda topic: all(
            any(r["message"]["topic"] == topic for r in server.requests("OnMessagePublish"))
            for server in servers.values())) for number in range(AFTER))
    finally:
        broker.stop()
        for server in servers.values():
            server.kill()
    log = broker.log()
    for name, events in (("all", 2 * FLOOD + after), ("some", FLOOD + after)):
        topics = [r["message"]["topic"] for r in servers[name].requests("OnMessagePublish")]
        assert not any(topic.startswith("$SYS/") for topic in topics)
        assert name == "all" or all(topic.startswith("flood/") for topic in topics)
        dropped = sum(int(count) for count in re.findall(rf"exhook server {name}: (\d+) notifications dropped", log))
        assert dropped >= FLOOD - CREDIT and len(topics) + dropped == events, (name, len(topics), dropped, log[-2000:])


def publish_until_arrived(publisher, topic: str, arrived) -> int:
    """Publish `topic` until `arrived(topic)` (one published before the sender's credit is back
    is dropped: it is published again); how many times it was published."""
    deadline = time.monotonic() + 30
    published = 0
    while True:
        publisher.publish(topic, b"a", qos=1)
        published += 1
        waited = time.monotonic() + 1.0
        while time.monotonic() < waited:
            if arrived(topic):
                return published
            time.sleep(0.05)
        assert time.monotonic() < deadline, f"no notification of {topic}"
