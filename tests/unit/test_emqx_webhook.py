"""EMQX 4 web hook: config lines as emqx_web_hook.conf writes them, rules, topic filters, bodies, base62."""

import pytest
from hypothesis import given, strategies as st

from actormq.conf.load import load_config
from actormq.errors import ConfigError
from actormq.webhooks import base62
from actormq.webhooks.emqx_webhook import WebHookConfig

EMQX_WEB_HOOK_RULES = """\
web.hook.api.url = http://192.168.200.10:8991/mqtt/webhook
web.hook.rule.client.connect.1 = {"action": "on_client_connect"}
web.hook.rule.client.connack.1 = {"action": "on_client_connack"}
web.hook.rule.client.connected.1 = {"action": "on_client_connected"}
web.hook.rule.client.disconnected.1 = {"action": "on_client_disconnected"}
web.hook.rule.client.subscribe.1 = {"action": "on_client_subscribe"}
web.hook.rule.client.unsubscribe.1 = {"action": "on_client_unsubscribe"}
web.hook.rule.session.subscribed.1 = {"action": "on_session_subscribed"}
web.hook.rule.session.unsubscribed.1 = {"action": "on_session_unsubscribed"}
web.hook.rule.session.terminated.1 = {"action": "on_session_terminated"}
web.hook.rule.message.publish.1 = {"action": "on_message_publish", "topic": "a/b/c"}
web.hook.rule.message.publish.2 = {"action": "on_message_publish", "topic": "foo/#"}
web.hook.rule.message.delivered.1 = {"action": "on_message_delivered"}
web.hook.rule.message.acked.1 = {"action": "on_message_acked"}
"""


def webhook_config(tmp_path, text):
    path = tmp_path / "actormq.conf"
    path.write_text(text)
    return WebHookConfig.from_config(load_config(path, env={}))


def test_emqx_conf_lines_load(tmp_path):
    hook = webhook_config(tmp_path, EMQX_WEB_HOOK_RULES)
    assert hook.url == "http://192.168.200.10:8991/mqtt/webhook"
    assert hook.headers == {"content-type": "application/json"}
    assert len(hook.events()) == 12


def test_no_url_no_web_hook(tmp_path):
    assert webhook_config(tmp_path, "web.hook.rule.client.connect.1 = {\"action\": \"on_client_connect\"}\n") is None


def test_topic_filters_of_message_rules(tmp_path):
    hook = webhook_config(tmp_path, EMQX_WEB_HOOK_RULES)
    assert hook.wants("message.publish", "a/b/c")
    assert hook.wants("message.publish", "foo/bar")
    assert not hook.wants("message.publish", "a/b/d")
    assert not hook.wants("message.publish", "fo/bar")
    assert hook.wants("message.delivered", "anything")
    assert not hook.wants("message.delivered", "$SYS/broker/uptime")
    assert not hook.wants("message.dropped", "a/b/c")
    assert hook.wants("client.connected")


@pytest.mark.parametrize("line, complaint", [
    ('web.hook.rule.client.connect.1 = {"action": "on_client_connected"}', "on_client_connect"),
    ("web.hook.rule.client.connect.1 = on_client_connect", "JSON"),
    ('web.hook.rule.client.connected.1 = {"action": "on_client_connected", "topic": "a"}', "no topic"),
    ('web.hook.rule.message.publish.1 = {"action": "on_message_publish", "topic": "a/#/b"}', "topic filter"),
])
def test_bad_rules_name_the_key(tmp_path, line, complaint):
    with pytest.raises(ConfigError) as error:
        webhook_config(tmp_path, "web.hook.url = http://127.0.0.1:1/\n" + line + "\n")
    assert complaint in str(error.value) and "web.hook.rule." in str(error.value)


def test_unknown_event_is_an_unknown_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        webhook_config(tmp_path, 'web.hook.rule.client.teleported.1 = {"action": "on_client_teleported"}\n')


CLIENT = {"clientid": "mqttx_84be94ff", "username": "user", "ipaddress": "192.168.200.10",
          "keepalive": 60, "proto_ver": 4, "connected_at": 1591690815}
MESSAGE = {"clientid": "sub", "username": None, "from_client_id": "pub", "from_username": "u",
           "topic": "foo/bar", "qos": 1, "retain": False, "payload": b"hello", "ts": 1591690815123}


def test_bodies_with_the_4x_fields(tmp_path):
    hook = webhook_config(tmp_path, EMQX_WEB_HOOK_RULES)
    assert hook.body("client.connected", CLIENT) == {
        "action": "client_connected", "clientid": "mqttx_84be94ff", "username": "user",
        "ipaddress": "192.168.200.10", "keepalive": 60, "proto_ver": 4, "connected_at": 1591690815}
    assert hook.body("client.connack", dict(CLIENT, conn_ack="success"))["conn_ack"] == "success"
    assert hook.body("client.disconnected", dict(CLIENT, reason="normal")) == {
        "action": "client_disconnected", "clientid": "mqttx_84be94ff", "username": "user", "reason": "normal"}
    assert hook.body("client.subscribe", dict(CLIENT, topic="t/#", opts={"qos": 1})) == {
        "action": "client_subscribe", "clientid": "mqttx_84be94ff", "username": "user", "topic": "t/#",
        "opts": {"qos": 1}}
    assert hook.body("message.publish", MESSAGE) == {
        "action": "message_publish", "from_client_id": "pub", "from_username": "u", "topic": "foo/bar",
        "qos": 1, "retain": False, "payload": "hello", "ts": 1591690815123}
    delivered = hook.body("message.delivered", MESSAGE, node="actormq@127.0.0.1")
    assert delivered["username"] == "undefined" and delivered["node"] == "actormq@127.0.0.1"
    assert delivered["clientid"] == "sub"


@pytest.mark.parametrize("encoding, payload", [("base64", "aGVsbG8="), ("base62", "aGVsbGP")])
def test_payload_encodings(tmp_path, encoding, payload):
    hook = webhook_config(tmp_path, EMQX_WEB_HOOK_RULES + f"web.hook.body.encoding_of_payload_field = {encoding}\n"
                          "web.hook.headers.x-token = abc\n")
    assert hook.body("message.publish", MESSAGE)["payload"] == payload
    assert hook.headers == {"x-token": "abc"}


def test_base62_golden():
    assert base62.encode(b"hello") == "aGVsbGP"
    assert base62.encode(b"\xff\xff\xff") == "9C9C9C9C"
    assert base62.encode(b"") == ""


@given(st.binary(max_size=64))
def test_base62_round_trip(data):
    assert base62.decode(base62.encode(data)) == data
