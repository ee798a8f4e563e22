"""VerneMQ webhooks on a real broker with real MQTT clients and a real HTTP endpoint:
auth_on_register / _m5 decisions and their reason codes (endpoint said error: not authorized;
endpoint down: server unavailable), subscribe rewrites and QoS 128 rejects, publish and
deliver notifications, the auth cache with Cache-Control, the max-age: warning, the start
warning, and a runtime registration reaching the workers."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.integration.mgmtapi import cli
from tests.webhook_endpoint import Endpoint, Scripted, running_endpoint

pytestmark = pytest.mark.timeout(90)

HOOKS = ("auth_on_register", "auth_on_register_m5", "auth_on_subscribe", "auth_on_subscribe_m5",
         "auth_on_publish", "auth_on_publish_m5", "on_register", "on_publish", "on_publish_m5",
         "on_deliver", "on_client_gone")


def answer(hook: str, body: dict):
    """What the endpoint answers, like a VerneMQ user's webhook service would."""
    username = body.get("username")
    if hook.startswith("auth_on_register"):
        if username == "bad":
            return Scripted({"result": {"error": "not_allowed"}})
        if username == "cached":
            return Scripted({"result": "ok"}, headers={"Cache-Control": "public, max-age=60"})
        if username == "colon":
            return Scripted({"result": "ok"}, headers={"Cache-Control": "max-age:300"})
    if hook == "auth_on_subscribe":
        topic = body["topics"][0]["topic"]
        if topic == "rewrite/me":
            return Scripted({"result": "ok", "topics": [{"topic": "rewritten/" + body["client_id"], "qos": 1}]})
        if topic == "forbidden/x":
            return Scripted({"result": "ok", "topics": [{"topic": topic, "qos": 128}]})
    return None


@pytest.fixture(scope="module")
def endpoint():
    actormq_only("webhooks are actormq's")
    yield from running_endpoint(answer)


@pytest.fixture(scope="module")
def broker(tmp_path_factory, endpoint):
    workdir = tmp_path_factory.mktemp("vmq")
    config = workdir / "actormq.conf"
    config.write_text("plugins.vmq_webhooks = on\n" + "".join(
        f"vmq_webhooks.{hook}.hook = {hook}\nvmq_webhooks.{hook}.endpoint = {endpoint.url}\n" for hook in HOOKS))
    broker = start_broker(workdir, "-c", str(config))
    yield broker
    broker.stop()


def test_start_warns_that_auth_webhooks_decide(broker):
    assert "DECIDES" in broker.log() and '{"result": "next"}' in broker.log()


def test_register_allowed_then_refused_by_the_endpoint(broker, endpoint):
    client_id = unique("ok")
    connect(broker.port, client_id, version=4, username="joe", password="pw").close()
    body = [b for b in endpoint.bodies("auth_on_register") if b["client_id"] == client_id][0]
    assert body["username"] == "joe" and body["password"] == "pw" and body["peer_addr"] == "127.0.0.1"
    assert body["clean_session"] is True and body["mountpoint"] == ""
    assert connect(broker.port, unique(), version=4, username="bad", password="x", check=False).connack.reason_code == 5
    refused = connect(broker.port, unique(), version=5, username="bad", password="x", check=False)
    assert refused.connack.reason_code == 0x87
    assert endpoint.bodies("auth_on_register_m5")[-1]["clean_start"] is True


def test_subscribe_rewrite_and_qos_128(broker, endpoint):
    client_id = unique("sub")
    subscriber = connect(broker.port, client_id, version=4, username="joe", password="pw")
    assert subscriber.subscribe("rewrite/me", qos=1) == [1]
    assert subscriber.subscribe("forbidden/x", qos=1) == [0x80]
    publisher = connect(broker.port, unique("pub"), version=4, username="joe", password="pw")
    publisher.publish(f"rewritten/{client_id}", b"hello", qos=1)
    got = subscriber.expect_one()
    assert (got.topic, got.payload) == (f"rewritten/{client_id}", b"hello")
    published = endpoint.wait_body("on_publish", lambda b: b["topic"] == f"rewritten/{client_id}")
    assert published["payload"] == "aGVsbG8=" and published["qos"] == 1 and published["username"] == "joe"
    delivered = endpoint.wait_body("on_deliver", lambda b: b["client_id"] == client_id)
    assert delivered["topic"] == f"rewritten/{client_id}" and delivered["payload"] == "aGVsbG8="
    subscriber.close()
    publisher.close()
    endpoint.wait_body("on_client_gone", lambda b: b == {"mountpoint": "", "client_id": client_id})


def test_auth_cache_answers_the_second_connect(broker, endpoint):
    client_id = unique("cache")
    for _ in range(3):
        connect(broker.port, client_id, version=4, username="cached", password="pw").close()
    calls = [b for b in endpoint.bodies("auth_on_register") if b["client_id"] == client_id]
    assert len(calls) == 1
    rows = json.loads(cli(broker, "webhooks", "cache", "show", "--format", "json").stdout)
    stats = {row["stat"]: row["value"] for row in rows if row["hook"] == "auth_on_register"}
    assert stats["hits"] >= 2 and stats["entries"] >= 1
    assert cli(broker, "webhooks", "cache", "clear").returncode == 0
    connect(broker.port, client_id, version=4, username="cached", password="pw").close()
    assert len([b for b in endpoint.bodies("auth_on_register") if b["client_id"] == client_id]) == 2


def test_max_age_with_a_colon_is_warned_about_once(broker, endpoint):
    for _ in range(2):
        connect(broker.port, unique("colon"), version=4, username="colon", password="pw").close()
    assert broker.log().count("max-age=300") == 1


def test_runtime_registration_reaches_the_worker(broker, endpoint):
    second = Endpoint().start()
    try:
        result = cli(broker, "webhooks", "register", "hook=on_client_wakeup", f"endpoint={second.url}")
        assert result.returncode == 0, result.stderr
        client_id = unique("wakeup")
        connect(broker.port, client_id, version=4, username="joe", password="pw").close()
        second.wait_body("on_client_wakeup", lambda b: b == {"mountpoint": "", "client_id": client_id})
        assert cli(broker, "webhooks", "deregister", "hook=on_client_wakeup",
                   f"endpoint={second.url}").returncode == 0
    finally:
        second.stop()


def test_dead_endpoint_fails_closed_as_server_unavailable(tmp_path):
    actormq_only("webhooks are actormq's")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    broker = start_broker(tmp_path, settings={"webhooks.a.hook": "auth_on_register", "webhooks.a.endpoint": dead,
                                              "webhooks.b.hook": "auth_on_register_m5", "webhooks.b.endpoint": dead})
    try:
        assert connect(broker.port, unique(), version=4, username="u", password="p", check=False).connack.reason_code == 3
        assert connect(broker.port, unique(), version=5, username="u", password="p", check=False).connack.reason_code == 0x88
    finally:
        broker.stop()


def test_runtime_registration_on_a_broker_without_webhooks_survives_a_restart(tmp_path):
    actormq_only("webhooks are actormq's")
    endpoint = Endpoint().start()
    broker = start_broker(tmp_path, workers=2)
    try:
        result = cli(broker, "webhooks", "register", "hook=on_client_wakeup", f"endpoint={endpoint.url}")
        assert result.returncode == 0, result.stderr
        for round_ in ("before", "after"):
            client_ids = [unique(round_) for _ in range(4)]       # spread over both workers
            for client_id in client_ids:
                connect(broker.port, client_id, version=4).close()
            for client_id in client_ids:
                endpoint.wait_body("on_client_wakeup", lambda b, c=client_id: b["client_id"] == c)
            broker.restart()
    finally:
        broker.stop()
        endpoint.stop()


def test_a_slow_endpoint_never_slows_publishers_and_drops_are_counted(tmp_path):
    actormq_only("webhooks are actormq's")
    from tests.integration.mgmtapi import call
    endpoint = Endpoint().start()
    endpoint.answer("on_publish", {}, delay=0.5)
    broker = start_broker(tmp_path, settings={"webhooks.p.hook": "on_publish", "webhooks.p.endpoint": endpoint.url,
                                              "webhooks.queue_size": "8"})
    try:
        subscriber = connect(broker.port, unique("sub"), version=4)
        subscriber.subscribe("slow/#", qos=1)
        publisher = connect(broker.port, unique("pub"), version=4)     # 3.1.1: fires on_publish
        for number in range(200):
            publisher.publish(f"slow/{number}", b"x", qos=1)
        received = [subscriber.expect_one(timeout=5).topic for _ in range(200)]
        assert received == [f"slow/{number}" for number in range(200)]   # none waited for HTTP
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, body = call(broker, "POST", "/api/v4/admin/webhooks.stats", body={})
            stats = {row["stat"]: row["value"] for row in body["data"] if row["hook"] == ""}
            if stats.get("dropped", 0) + stats.get("sent", 0) == 200:
                break
            time.sleep(0.2)
        assert stats.get("dropped", 0) >= 150 and stats.get("sent", 0) >= 1, body
    finally:
        broker.stop()
        endpoint.stop()
