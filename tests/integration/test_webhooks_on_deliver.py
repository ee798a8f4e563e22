"""VerneMQ's on_deliver / on_deliver_m5 webhooks on a real broker with paho clients and a real
HTTP endpoint: the delivered message carries the endpoint's topic and payload (and, MQTT 5,
properties) modifiers; `next` and an error deliver it unchanged; a slow answer holds that
subscriber's later deliveries behind it, in order."""

from __future__ import annotations

import base64

import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.webhook_endpoint import Endpoint, Scripted

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
def endpoint():
    actormq_only("webhooks are actormq's")
    server = Endpoint().start()
    server.respond = answer
    yield server
    server.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory, endpoint):
    workdir = tmp_path_factory.mktemp("on_deliver")
    config = workdir / "actormq.conf"
    config.write_text(f"webhooks.d.hook = on_deliver\nwebhooks.d.endpoint = {endpoint.url}\n"
                      f"webhooks.d5.hook = on_deliver_m5\nwebhooks.d5.endpoint = {endpoint.url}\n")
    broker = start_broker(workdir, "-c", str(config))
    yield broker
    broker.stop()


def test_modifiers_change_what_is_delivered_next_and_error_do_not(broker, endpoint):
    client_id = unique("sub")
    subscriber = connect(broker.port, client_id, version=4)
    assert subscriber.subscribe("od/#", qos=1) == [1]
    publisher = connect(broker.port, unique("pub"), version=4)
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
    subscriber = connect(broker.port, unique("sub"), version=4)
    assert subscriber.subscribe("slow/#", qos=0) == [0]
    publisher = connect(broker.port, unique("pub"), version=4)
    for payload in ("slow-1", "quick-2", "slow-3", "quick-4"):
        publisher.publish("slow/a", payload.encode(), qos=0)
    got = [m.payload for m in subscriber.expect(4, timeout=10)]
    assert got == [b"slow-1 done", b"quick-2", b"slow-3 done", b"quick-4"]
    subscriber.close()
    publisher.close()


def test_on_deliver_m5_properties_modifier(broker, endpoint):
    client_id = unique("sub5")
    subscriber = connect(broker.port, client_id, version=5)
    assert subscriber.subscribe("m5/#", qos=1) == [1]
    publisher = connect(broker.port, unique("pub5"), version=5)
    publisher.publish("m5/a", b"props", qos=1, properties={"user_property": [("from", "publisher")]})
    got = subscriber.expect_one()
    assert got.payload == b"props"
    assert ("added", "by webhook") in got.properties["user_property"]
    asked = endpoint.wait_body("on_deliver_m5", lambda b: b["client_id"] == client_id)
    assert asked["properties"]["p_user_property"] == [{"key": b64("from"), "val": b64("publisher")}]
    subscriber.close()
    publisher.close()
