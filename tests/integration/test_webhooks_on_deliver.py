"""VerneMQ's on_deliver / on_deliver_m5 webhooks on a real broker with paho clients and a real
HTTP endpoint: the delivered message carries the endpoint's topic and payload (and, MQTT 5,
properties) modifiers; `next` and an error deliver it unchanged; a slow answer holds that
subscriber's later deliveries behind it, in order."""

from __future__ import annotations

import base64

import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.webhook_endpoint import Scripted, running_endpoint

pytestmark = pytest.mark.timeout(90)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def answer(hook: str, body: dict):
    """An on_deliver service as VerneMQ documents it: {"result": "ok", "modifiers": {...}}."""
    if not hook.startswith("on_deliver"):
        return None
    payload = base64.b64decode(body["payload"]).decode()
    if payload == "rewrite":
        return Scripted({"result": "ok", "modifiers": {"topic": "delivered/" + body["client_id"],
                                                       "payload": b64("rewritten")}})
    if payload == "next":
        return Scripted({"result": "next"})
    if payload == "error":
        return Scripted({"result": {"error": "not_today"}})
    if payload.startswith("slow"):
        return Scripted({"result": "ok", "modifiers": {"payload": b64(payload + " done")}}, delay=0.4)
    if payload == "props":
        return Scripted({"result": "ok", "modifiers": {"properties": {
            "p_user_property": [{"key": b64("added"), "val": b64("by webhook")}]}}})
    return Scripted({"result": "ok"})


@pytest.fixture(scope="module")
def broker(tmp_path_factory, endpoint):
    """A broker with both deliver webhooks, configured in actormq's spelling."""
    config = tmp_path_factory.mktemp("on_deliver") / "actormq.conf"
    config.write_text("".join(f"webhooks.{hook}.hook = {hook}\nwebhooks.{hook}.endpoint = {endpoint.url}\n"
                              for hook in ("on_deliver", "on_deliver_m5")))
    started = start_broker(config.parent, "-c", str(config))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def endpoint():
    actormq_only("webhooks are actormq's")
    yield from running_endpoint(answer)


def clients(broker, topic_filter: str, qos: int, version: int = 4):
    """(subscriber id, subscriber on `topic_filter`, publisher)."""
    client_id = unique("sub")
    subscriber = connect(broker.port, client_id, version=version)
    assert subscriber.subscribe(topic_filter, qos=qos) == [qos]
    return client_id, subscriber, connect(broker.port, unique("pub"), version=version)


def test_modifiers_change_what_is_delivered_next_and_error_do_not(broker, endpoint):
    client_id, subscriber, publisher = clients(broker, "od/#", 1)
    for payload in ("rewrite", "next", "error", "plain"):
        publisher.publish("od/a", payload.encode(), qos=1)
    got = [(m.topic, m.payload) for m in subscriber.expect(4)]
    assert got == [(f"delivered/{client_id}", b"rewritten"), ("od/a", b"next"), ("od/a", b"error"),
                   ("od/a", b"plain")]
    asked = endpoint.wait_body("on_deliver", lambda b: b["client_id"] == client_id)
    assert asked["topic"] == "od/a" and asked["payload"] == b64("rewrite") and asked["qos"] == 1
    subscriber.close()
    publisher.close()


def test_a_slow_answer_holds_later_deliveries_in_order(broker):
    _, subscriber, publisher = clients(broker, "slow/#", 0)
    for payload in ("slow-1", "quick-2", "slow-3", "quick-4"):
        publisher.publish("slow/a", payload.encode(), qos=0)
    got = [m.payload for m in subscriber.expect(4, timeout=10)]
    assert got == [b"slow-1 done", b"quick-2", b"slow-3 done", b"quick-4"]
    subscriber.close()
    publisher.close()


def test_on_deliver_m5_properties_modifier(broker, endpoint):
    client_id, subscriber, publisher = clients(broker, "m5/#", 1, version=5)
    publisher.publish("m5/a", b"props", qos=1, properties={"user_property": [("from", "publisher")]})
    got = subscriber.expect_one()
    assert got.payload == b"props"
    assert ("added", "by webhook") in got.properties["user_property"]
    asked = endpoint.wait_body("on_deliver_m5", lambda b: b["client_id"] == client_id)
    assert asked["properties"]["p_user_property"] == [{"key": b64("from"), "val": b64("publisher")}]
    subscriber.close()
    publisher.close()
