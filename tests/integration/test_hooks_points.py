"""Plugins at every hook point of a real broker: CONNECT refusals and modifiers
(mountpoint, client id, in-flight window, bad modifiers), PUBLISH authorization
with modifiers, publish and deliver folds (encode-once kept for subscribers a
hook left alone), SUBSCRIBE per filter (refuse, grant lower QoS, rewrite),
UNSUBSCRIBE refusal, will folds, the order of the chain, and the notify
events of a client's life."""

from __future__ import annotations

import pytest

from actormq.transport.codec import Puback, Publish
from tests.integration.brokers import start_broker
from tests.integration.clients import Will, connect, unique
from tests.integration.hookplugins import events, log_with, plugin_settings
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def hooked(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hooked")
    record = workdir / "events.jsonl"
    broker = start_broker(workdir, settings=plugin_settings(
        "first, second, gatekeeper, recorder", **{
            "plugins.default.authenticate": "allow", "plugin.recorder.file": str(record),
            "plugin.gatekeeper.max_payload": "1KB"}))
    broker.record = record
    yield broker
    broker.stop()


def test_a_plugin_refuses_a_connect_with_its_reason_code(hooked):
    v5 = connect(hooked.port, unique(), username="bad", password="x", check=False)
    assert v5.connack.reason_code == 0x86
    v3 = connect(hooked.port, unique(), version=4, username="bad", password="x", check=False)
    assert v3.connack.reason_code == 4      # 3.1.1: bad user name or password


def test_a_bad_modifier_refuses_the_connect_and_says_so_in_the_log(hooked):
    client = connect(hooked.port, unique(), username="badmod", password="x", check=False)
    assert client.connack.reason_code == 0x83
    log_with(hooked, "max_inflight_messages must be a non-negative integer")


def test_mountpoint_modifier_puts_the_client_in_its_own_topic_tree(hooked):
    outside = connect(hooked.port, unique())
    outside.subscribe("tenant1/#")
    inside = connect(hooked.port, unique(), username="mp", password="x")
    assert inside.subscribe("room/#") == [0]
    inside.publish("room/1", b"hello", qos=1)
    assert inside.expect_one().topic == "room/1"
    assert outside.expect_one().topic == "tenant1/room/1"
    outside.publish("tenant1/room/2", b"from outside")
    assert inside.expect_one().topic == "room/2"


def test_client_id_modifier_renames_the_session(hooked):
    client_id = unique()
    connect(hooked.port, client_id, username="renamed", password="x")
    events(hooked.record, lambda found: ["client.connected", f"renamed-{client_id}"] in found)


def test_max_inflight_modifier_limits_the_window_of_that_client(hooked):
    topic = unique("win")
    raw = RawClient(hooked.port)
    raw.connect(unique(), username="limited", password=b"x")
    raw.subscribe(topic, qos=1)
    publisher = connect(hooked.port, unique())
    for n in range(3):
        publisher.publish(topic, str(n).encode(), qos=1)
    first = raw.expect(Publish)
    raw.expect_nothing(0.3)             # a window of one: the next waits for the PUBACK
    raw.send(Puback(first.packet_id))
    assert raw.expect(Publish).payload == b"1"


def test_publish_authorization_refuses_with_the_plugin_reason_code(hooked):
    subscriber = connect(hooked.port, unique())
    subscriber.subscribe("deny/#")
    subscriber.subscribe("allowed/#")
    publisher = connect(hooked.port, unique())
    publisher.publish("deny/x", b"no", qos=1)
    assert list(publisher.publish_codes.values()) == [0x87]
    publisher.publish("allowed/x", b"yes", qos=1)
    assert subscriber.expect_one().topic == "allowed/x"     # and nothing from deny/x before it
    subscriber.expect_none(0.1)


def test_publish_modifiers_change_topic_and_qos(hooked):
    subscriber = connect(hooked.port, unique())
    subscriber.subscribe("rewritten/#", qos=1)
    publisher = connect(hooked.port, unique())
    publisher.publish("rewrite/a", b"m", qos=1)
    got = subscriber.expect_one()
    assert (got.topic, got.qos) == ("rewritten/a", 0)


def test_publish_authorization_uses_the_plugin_settings(hooked):
    subscriber = connect(hooked.port, unique())
    subscriber.subscribe("big/#")
    publisher = connect(hooked.port, unique())
    publisher.publish("big/x", b"x" * 2000, qos=1)
    publisher.publish("big/x", b"small", qos=1)
    assert list(publisher.publish_codes.values()) == [0x97, 0]
    assert subscriber.expect_one().payload == b"small"


def test_publish_fold_changes_or_drops_the_message(hooked):
    subscriber = connect(hooked.port, unique())
    subscriber.subscribe("upper/#")
    subscriber.subscribe("drop/#")
    publisher = connect(hooked.port, unique())
    publisher.publish("drop/x", b"gone", qos=1)
    publisher.publish("upper/x", b"shout", qos=1)
    assert subscriber.expect_one().payload == b"SHOUT"
    subscriber.expect_none(0.1)
    assert list(publisher.publish_codes.values()) == [0, 0]


def test_deliver_fold_changes_one_subscriber_copy_only(hooked):
    topic = unique("fan")
    stamped = connect(hooked.port, unique("stamped"))
    plain = connect(hooked.port, unique("plain"))
    for client in (stamped, plain):
        client.subscribe(topic)
    connect(hooked.port, unique()).publish(topic, b"m")
    assert stamped.expect_one().properties["user_property"] == [("to", stamped.client_id)]
    assert "user_property" not in plain.expect_one().properties


def test_subscribe_per_filter_refuse_downgrade_and_rewrite(hooked):
    client = connect(hooked.port, unique())
    assert client.subscribe("secret/#", qos=1) == [0x87]
    assert client.subscribe("low/#", qos=1) == [0]
    assert client.subscribe("alias/x", qos=1) == [1]
    connect(hooked.port, unique()).publish("aliased/x", b"via alias", qos=1)
    assert client.expect_one().payload == b"via alias"


def test_subscribe_refusal_in_mqtt_311_is_0x80(hooked):
    client = connect(hooked.port, unique(), version=4)
    assert client.subscribe("secret/#", qos=1) == [0x80]


def test_unsubscribe_refused_keeps_the_subscription(hooked):
    client = connect(hooked.port, unique())
    client.subscribe("locked/#")
    assert client.unsubscribe("locked/#") == [0x87]
    connect(hooked.port, unique()).publish("locked/a", b"still here", qos=1)
    assert client.expect_one().payload == b"still here"


def test_unsubscribe_modifier_rewrites_the_filter(hooked):
    client = connect(hooked.port, unique())
    name = unique("u")
    client.subscribe(f"alias/{name}")           # subscribed as aliased/<name>
    client.subscribe(f"plain/{name}")
    assert client.unsubscribe(f"alias/{name}") == [0]
    publisher = connect(hooked.port, unique())
    publisher.publish(f"aliased/{name}", b"gone", qos=1)
    publisher.publish(f"plain/{name}", b"after", qos=1)
    assert client.expect_one().payload == b"after"
    client.expect_none(0.1)


def test_will_fold(hooked):
    base = unique("w")
    watcher = connect(hooked.port, unique())
    watcher.subscribe(f"{base}/#")
    connect(hooked.port, unique(), will=Will(f"{base}/drop", b"lost")).drop()
    connect(hooked.port, unique(), will=Will(f"{base}/upper", b"last words")).drop()
    got = watcher.expect_one()
    assert (got.topic, got.payload) == (f"{base}/upper", b"LAST WORDS")
    watcher.expect_none(0.2)


def test_the_first_plugin_of_the_order_runs_first(hooked):
    subscriber = connect(hooked.port, unique())
    subscriber.subscribe("order/#")
    publisher = connect(hooked.port, unique())
    publisher.publish("order/x", b"x", qos=1)
    assert subscriber.expect_one().payload == b"x|first|second"
    publisher.publish("order/deny-first", b"", qos=1)
    publisher.publish("order/deny-second", b"", qos=1)
    assert list(publisher.publish_codes.values()) == [0, 0x87, 0]


def test_notify_events_of_a_client_life(hooked):
    client_id = unique("life")
    topic = unique("life-topic")
    client = connect(hooked.port, client_id, properties={"session_expiry_interval": 60})
    client.subscribe(topic, qos=1)
    client.publish(topic, b"to myself", qos=1)
    client.expect_one()
    client.unsubscribe(topic)
    client.publish(unique("nobody"), b"", qos=0)
    client.disconnect()
    again = connect(hooked.port, client_id, clean_start=False,
                    properties={"session_expiry_interval": 60})
    connect(hooked.port, client_id, clean_start=False, properties={"session_expiry_interval": 60})
    again.wait_closed()
    expected = [
        ["client.connect", client_id], ["client.connack", client_id, 0],
        ["session.created", client_id], ["client.connected", client_id],
        ["client.wakeup", client_id], ["session.subscribed", client_id, topic],
        ["message.acked", client_id, topic], ["session.unsubscribed", client_id, topic],
        ["message.dropped", client_id, "no_subscribers"],
        ["client.disconnected", client_id, "normal"], ["client.offline", client_id],
        ["session.resumed", client_id], ["session.taken_over", client_id],
    ]

    def mine(found):
        return [[e[0], *e[1:]] for e in found if len(e) > 1 and e[1] == client_id]

    def complete(found):
        have = mine(found)
        return all(any(event[:len(want)] == want or _drop_matches(event, want) for event in have)
                   for want in expected)
    found = mine(events(hooked.record, complete))
    names = [event[0] for event in found]
    assert names.index("client.connect") < names.index("client.connack") \
        < names.index("client.connected")


def _drop_matches(event, want) -> bool:
    return want[0] == "message.dropped" and event[0] == "message.dropped" and event[-1] == want[-1]


def test_a_mountpoint_applies_without_any_publish_hook(make_broker):
    broker = make_broker(settings=plugin_settings("mounter"))
    outside = connect(broker.port, unique())
    outside.subscribe("m/#")
    inside = connect(broker.port, unique(), username="mp", password="x")
    inside.subscribe("in/#")
    inside.publish("in/1", b"x", qos=1)
    assert outside.expect_one().topic == "m/in/1"
    assert inside.expect_one().topic == "in/1"
