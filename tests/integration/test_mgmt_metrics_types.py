"""Prometheus /metrics of a two-worker broker checked exactly against known
traffic: packets and bytes by packet type in both directions (paho clients
and a raw client with golden bytes), drops by reason (a full offline queue),
hook calls per hook point and plugin; `actormq metrics show` and `actormq
plugin show --by-hook` with the same numbers, and $SYS publishing them."""

from __future__ import annotations

import json
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.clients import connect, unique
from tests.integration.hookplugins import plugin_settings
from tests.integration.mgmtapi import call, cli, module_broker

pytestmark = pytest.mark.timeout(90)

PERSISTENT = {"session_expiry_interval": 300}
# independently written: CONNECT 3.1.1, clean session, keepalive 60, client id "raw1"
RAW_CONNECT = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04raw1"
CONNACK_OK = b"\x20\x02\x00\x00"
PINGREQ, PINGRESP, DISCONNECT = b"\xc0\x00", b"\xd0\x00", b"\xe0\x00"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from module_broker(tmp_path_factory, "metrics_types", settings=plugin_settings(
        "gatekeeper", **{"plugins.default.authenticate": "allow", "queue.max_offline_messages": 1,
                         "sys_interval": "1"}))


def _scrape(broker) -> dict:
    status, text = call(broker, "GET", "/metrics", auth=None, raw=True)
    assert status == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0)


class _Growth:
    """What a counter grew by between a scrape before the traffic and now."""

    def __init__(self, broker) -> None:
        self.broker = broker
        self.before = _scrape(broker)
        self.after = self.before

    def scrape(self) -> None:
        self.after = _scrape(self.broker)

    def __call__(self, name: str, **labels) -> float:
        return _value(self.after, name, **labels) - _value(self.before, name, **labels)

    def settle(self, name: str, expected: float, **labels) -> None:
        """Scrape until `name` grew by `expected` (acks the clients send after a callback)."""
        deadline = time.monotonic() + 5
        while self(name, **labels) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
            self.scrape()


def _raw_ping(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(RAW_CONNECT)
        assert sock.recv(4) == CONNACK_OK
        sock.sendall(PINGREQ)
        assert sock.recv(2) == PINGRESP
        sock.sendall(DISCONNECT)
        assert sock.recv(1) == b""      # the broker closes after DISCONNECT


def _publish_size(topic: str, payload: bytes) -> int:
    """A 5.0 QoS 1 PUBLISH without properties: header, topic, packet id, property length, payload."""
    remaining = 2 + len(topic.encode()) + 2 + 1 + len(payload)
    return 1 + (1 if remaining < 128 else 2) + remaining


def test_packets_bytes_drops_and_hook_calls_are_counted_exactly(broker):
    growth = _Growth(broker)
    topic, payload = unique("types"), b"0123456789"
    subscriber = connect(broker.port, unique("tsub"))
    subscriber.subscribe(topic, qos=1)
    publisher = connect(broker.port, unique("tpub"))
    for _ in range(4):
        publisher.wait_published(publisher.publish(topic, payload, qos=1))
    assert len(subscriber.expect(4)) == 4
    subscriber.unsubscribe(topic)
    subscriber.disconnect()
    offline_id, offline_topic = unique("toff"), unique("offline")
    offline = connect(broker.port, offline_id, clean_start=False, properties=PERSISTENT)
    offline.subscribe(offline_topic, qos=1)
    offline.disconnect()
    for _ in range(3):                  # one is queued, two find the queue full
        publisher.wait_published(publisher.publish(offline_topic, payload, qos=1))
    publisher.disconnect()
    _raw_ping(broker.port)
    growth.settle("actormq_packets_received_total", 4, type="puback")
    growth.settle("actormq_packets_received_total", 4, type="disconnect")

    received = {"connect": 4, "publish": 7, "puback": 4, "subscribe": 2, "unsubscribe": 1,
                "pingreq": 1, "disconnect": 4, "pubrec": 0, "pubrel": 0, "pubcomp": 0, "auth": 0}
    sent = {"connack": 4, "publish": 4, "puback": 7, "suback": 2, "unsuback": 1, "pingresp": 1,
            "disconnect": 0, "pubrec": 0, "pubrel": 0, "pubcomp": 0, "auth": 0}
    assert {kind: growth("actormq_packets_received_total", type=kind) for kind in received} == received
    assert {kind: growth("actormq_packets_sent_total", type=kind) for kind in sent} == sent
    assert {kind: growth(f"mqtt_{kind}_received_total") for kind in received} == received
    assert {kind: growth(f"mqtt_{kind}_sent_total") for kind in sent} == sent
    assert growth("actormq_packet_bytes_received_total", type="pingreq") == 2
    assert growth("actormq_packet_bytes_sent_total", type="pingresp") == 2
    assert growth("actormq_packet_bytes_sent_total", type="puback") == 4 * 7     # reason 0: 4 bytes
    assert growth("actormq_packet_bytes_received_total", type="publish") == \
        4 * _publish_size(topic, payload) + 3 * _publish_size(offline_topic, payload)
    assert growth("actormq_packet_bytes_sent_total", type="publish") == 4 * _publish_size(topic, payload)
    connects = growth("actormq_packet_bytes_received_total", type="connect")
    assert connects > len(RAW_CONNECT) * 4
    assert growth("actormq_bytes_received_total") == sum(
        growth("actormq_packet_bytes_received_total", type=kind) for kind in received)

    assert growth("actormq_messages_dropped_total", reason="queue_full") == 2
    assert _value(growth.after, "actormq_queue_size_max") >= 1         # the offline session's
    for reason in ("hold_timeout", "expired", "no_route"):
        assert growth("actormq_messages_dropped_total", reason=reason) == 0

    calls = {point: growth("actormq_hook_calls_total", hook=point, plugin="gatekeeper")
             for point in ("client.authenticate", "client.authorize_subscribe",
                           "client.authorize_publish", "client.unsubscribe")}
    assert calls == {"client.authenticate": 4, "client.authorize_subscribe": 2,
                     "client.authorize_publish": 7, "client.unsubscribe": 1}
    assert growth("actormq_hook_errors_total", hook="client.authenticate", plugin="gatekeeper") == 0
    assert _value(growth.after, "actormq_hook_latency_p99_seconds", hook="client.authorize_publish",
                  plugin="gatekeeper") >= 0


def test_metrics_show_and_plugin_show_by_hook_give_the_same_numbers(broker):
    scraped = _scrape(broker)
    result = cli(broker, "metrics", "show", "--format", "json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    shown = shown[0] if isinstance(shown, list) else shown
    for kind in ("connect", "publish", "subscribe"):
        assert shown[f"counter.packets_received_{kind}"] >= _value(
            scraped, "actormq_packets_received_total", type=kind) > 0
    assert shown["counter.dropped_queue_full"] == _value(scraped, "actormq_messages_dropped_total",
                                                         reason="queue_full") >= 2
    result = cli(broker, "plugin", "show", "--by-hook", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {row["worker"] for row in rows} == {0, 1}
    by_hook = {}
    for row in rows:
        by_hook[row["hook"]] = by_hook.get(row["hook"], 0) + row["calls"]
    assert by_hook["client.authenticate"] >= _value(
        scraped, "actormq_hook_calls_total", hook="client.authenticate", plugin="gatekeeper") >= 4
    table = cli(broker, "plugin", "show", "--by-hook")
    assert "client.authorize_publish" in table.stdout and "gatekeeper" in table.stdout


def test_sys_topics_publish_the_same_counts(broker):
    watcher = connect(broker.port, unique("tsys"))
    watcher.subscribe("$SYS/broker/packets/received/pingreq", 0)
    _raw_ping(broker.port)
    expected = _value(_scrape(broker), "actormq_packets_received_total", type="pingreq")
    deadline = time.monotonic() + 10
    seen = None
    while seen != expected and time.monotonic() < deadline:
        seen = int(watcher.expect(1, timeout=5)[0].payload)
    assert seen == expected >= 1


def test_a_message_larger_than_the_subscriber_takes_is_dropped_as_too_large(broker):
    growth = _Growth(broker)
    topic = unique("large")
    subscriber = connect(broker.port, unique("tsmall"), properties={"maximum_packet_size": 128})
    subscriber.subscribe(topic, qos=1)
    publisher = connect(broker.port, unique("tbig"))
    publisher.wait_published(publisher.publish(topic, b"x" * 200, qos=1))
    publisher.wait_published(publisher.publish(topic, b"small", qos=1))
    assert [m.payload for m in subscriber.expect(1)] == [b"small"]     # the later one did arrive
    growth.scrape()
    assert growth("actormq_messages_dropped_total", reason="too_large") == 1
    assert growth("actormq_packets_sent_total", type="publish") == 1
    status, body = call(broker, "GET", "/api/v4/metrics")
    assert status == 200 and body["data"][0]["metrics"]["delivery.dropped.too_large"] >= 1
