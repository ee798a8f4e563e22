"""EMQX 4 web hook and ExHook on a real broker with real MQTT clients: web hook rules with
topic filters and 4.x bodies; an ExHook HookProvider (a real grpc.aio server process written
from our exhook.proto) started after the broker (logins refused until it loads), that denies
a login, rewrites a topic, only sees the topics it asked for, and is killed mid-run."""

from __future__ import annotations

import time

import pytest

from tests.exhook_provider import ProviderServer
from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.webhook_endpoint import Endpoint

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def _actormq():
    actormq_only("web hook and ExHook are actormq's")


def test_web_hook_rules_and_bodies(tmp_path, _actormq):
    endpoint = Endpoint().start()
    config = tmp_path / "emqx_web_hook.conf"
    config.write_text(f"""web.hook.url = {endpoint.url}
web.hook.headers.x-token = secret
web.hook.body.encoding_of_payload_field = base64
web.hook.rule.client.connected.1 = {{"action": "on_client_connected"}}
web.hook.rule.client.disconnected.1 = {{"action": "on_client_disconnected"}}
web.hook.rule.session.subscribed.1 = {{"action": "on_session_subscribed"}}
web.hook.rule.message.publish.1 = {{"action": "on_message_publish", "topic": "a/b/c"}}
web.hook.rule.message.publish.2 = {{"action": "on_message_publish", "topic": "foo/#"}}
""")
    broker = start_broker(tmp_path, "-c", str(config))
    try:
        client_id = unique("emqx")
        client = connect(broker.port, client_id, version=4, username="user", password="123456", keepalive=60)
        client.subscribe("foo/#")
        for topic in ("a/b/d", "fo/bar", "a/b/c", "foo/bar"):
            client.publish(topic, b"hello", qos=1)
        assert client.expect_one().topic == "foo/bar"
        client.close()

        def mine(action):
            return lambda body: body["action"] == action and client_id in (body.get("clientid"),
                                                                           body.get("from_client_id"))
        connected = endpoint.wait_body("", mine("client_connected"))
        assert {k: connected[k] for k in ("clientid", "username", "ipaddress", "keepalive", "proto_ver")} == {
            "clientid": client_id, "username": "user", "ipaddress": "127.0.0.1", "keepalive": 60, "proto_ver": 4}
        endpoint.wait_body("", mine("client_disconnected"))
        subscribed = endpoint.wait_body("", mine("session_subscribed"))
        assert subscribed["topic"] == "foo/#" and subscribed["opts"] == {"qos": 0}
        published = [b for b in endpoint.bodies("") if mine("message_publish")(b)]
        assert [b["topic"] for b in published] == ["a/b/c", "foo/bar"]
        assert published[0]["payload"] == "aGVsbG8=" and published[0]["from_username"] == "user"
        headers = {k.lower(): v for k, v in endpoint.requests[0][0].items()}
        assert headers["x-token"] == "secret"
        assert not any(b.get("topic", "").startswith("$SYS") for b in endpoint.bodies(""))
    finally:
        broker.stop()
        endpoint.stop()


@pytest.fixture
def provider(tmp_path, _actormq):
    server = ProviderServer({"client.authenticate": [], "message.publish": ["t/#"], "client.connected": []},
                            tmp_path / "provider.log")
    yield server
    server.kill()


def _connected_once_back(port: int):
    for _ in range(40):
        client = connect(port, unique(), version=5, username="good", password="x", check=False)
        if client.connack.reason_code == 0:
            return client
        client.close()
        time.sleep(0.25)
    return client


def test_exhook_started_late_denies_rewrites_filters_and_fails_closed(tmp_path, provider):
    broker = start_broker(tmp_path, settings={"exhook.server.default.url": provider.url,
                                              "exhook.request_timeout": "2s", "exhook.auto_reconnect": "1s"})
    try:
        started = time.monotonic()      # not loaded yet: request_failed_action (deny), without waiting
        assert connect(broker.port, unique(), version=5, username="good", password="x", check=False).connack.reason_code == 0x88
        assert connect(broker.port, unique(), version=4, username="good", password="x", check=False).connack.reason_code == 3
        assert time.monotonic() - started < 2.0
        provider.start()
        assert _connected_once_back(broker.port).connack.reason_code == 0
        assert connect(broker.port, unique(), version=5, username="bad", password="x", check=False).connack.reason_code == 0x87
        assert connect(broker.port, unique(), version=4, username="bad", password="x", check=False).connack.reason_code == 5
        subscriber = connect(broker.port, unique("sub"), username="good", password="x")
        subscriber.subscribe("t/#", qos=1)
        subscriber.subscribe("other/#", qos=1)
        publisher = connect(broker.port, unique("pub"), username="good", password="x")
        publisher.publish("other/x", b"plain", qos=1)
        assert subscriber.expect_one().topic == "other/x"
        publisher.publish("t/rewrite", b"payload", qos=1)
        got = subscriber.expect_one()
        assert (got.topic, got.payload) == ("t/rewritten", b"payload")
        publisher.publish("t/drop", b"gone", qos=1)
        publisher.publish("other/y", b"after", qos=1)
        assert subscriber.expect_one().topic == "other/y"       # t/drop never arrived before it
        topics = [r["message"]["topic"] for r in provider.requests("OnMessagePublish")]
        assert topics == ["t/rewrite", "t/drop"]                # other/* filtered out
        assert provider.wait_for("OnClientConnected", 2)
        provider.kill()
        refused = connect(broker.port, unique(), version=5, username="good", password="x", check=False)
        assert refused.connack.reason_code == 0x88
        provider.start()
        assert _connected_once_back(broker.port).connack.reason_code == 0
    finally:
        broker.stop()
