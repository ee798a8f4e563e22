"""Observing a running broker: Prometheus /metrics parsed by prometheus_client
and checked against known traffic, hook metrics and /plugins with a plugin
loaded, /health and /health/listeners (503 naming a stopped worker), and
`actormq trace client` streaming a scripted client's events (packets, hook
calls with provider and latency, deliveries, drops with their reason)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.brokers import REPO_ROOT
from tests.integration.clients import connect, unique
from tests.integration.hookplugins import plugin_settings
from tests.integration.mgmtapi import call, get, module_broker

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    yield from module_broker(tmp_path_factory, "observed", settings=plugin_settings(
        "gatekeeper", **{"plugins.default.authenticate": "allow", "queue.max_offline_messages": 1,
                         "management.request_timeout_ms": 800}))


def _scrape(broker) -> dict:
    status, text = call(broker, "GET", "/metrics", auth=None, raw=True)
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_prometheus_counts_known_traffic_across_workers(observed):
    before = _scrape(observed)
    topic = unique("prom")
    subscriber = connect(observed.port, unique("psub"))
    subscriber.subscribe(topic, qos=1)
    publisher = connect(observed.port, unique("ppub"))
    for index in range(5):
        publisher.wait_published(publisher.publish(topic, f"m{index}".encode(), qos=1,
                                                   retain=index == 4))     # one write to LMDB
    assert len(subscriber.expect(5)) == 5
    after = _scrape(observed)

    def grew(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("actormq_connections_total") == 2
    assert grew("actormq_messages_received_total") == 5
    assert grew("actormq_messages_sent_total") == 5
    assert grew("actormq_packets_received_total", type="publish") == 5
    assert grew("actormq_bytes_received_total") > 5 * len(topic)
    assert _value(after, "actormq_connections_current") >= 2
    assert _value(after, "actormq_connections_by_protocol", protocol="mqtt5") >= 2
    assert _value(after, "actormq_connections_by_listener", listener="listener.tcp.default") >= 2
    assert _value(after, "actormq_subscriptions") >= 1
    for worker in ("0", "1"):
        assert _value(after, "actormq_worker_up", worker=worker) == 1
        assert _value(after, "actormq_worker_resident_memory_bytes", worker=worker) > 10 * 2 ** 20
        assert _value(after, "actormq_worker_cpu_seconds_total", worker=worker) > 0
    deadline = time.monotonic() + 5
    while grew("actormq_storage_writes_total") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)        # the writer commits the retained message in the background
        after = _scrape(observed)
    assert grew("actormq_storage_writes_total") >= 1 and _value(after, "actormq_storage_commits_total") >= 1
    assert _value(after, "actormq_messages_retained") >= 1
    assert _value(after, "actormq_storage_map_size_bytes") > 0
    assert grew("actormq_hook_calls_total", hook="client.authenticate", plugin="gatekeeper") == 2
    assert grew("actormq_hook_calls_total", hook="client.authorize_publish", plugin="gatekeeper") == 5


def test_metrics_need_no_secret_but_the_api_does(observed):
    assert call(observed, "GET", "/metrics", auth=None, raw=True)[0] == 200
    assert call(observed, "GET", "/api/v4/metrics", auth=None)[0] == 401


def test_plugins_route_lists_the_loaded_plugin(observed):
    [node] = get(observed, "/api/v4/plugins")["data"]
    [plugin] = node["plugins"]
    assert plugin["name"] == "gatekeeper" and plugin["active"] is True
    assert set(plugin) == {"name", "version", "description", "active", "type"}      # EMQX 4's fields


def test_health_is_503_naming_a_worker_that_does_not_answer(observed):
    status, body = call(observed, "GET", "/health", auth=None)
    assert status == 200 and body["status"] == "ok" and body["workers"] == 2
    status, body = call(observed, "GET", "/health/listeners", auth=None)
    assert status == 200 and body["listeners"][0]["status"] == "up"
    pid = int(re.search(r"pids (\d+)", observed.stdout()).group(1))
    os.kill(pid, signal.SIGSTOP)
    try:
        status, body = call(observed, "GET", "/health", auth=None)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert status == 503 and body["status"] == "unavailable"
    assert body["reasons"] == ["worker 0: did not answer within 0.8 s"]


class _Trace:
    """`actormq trace client` as a subprocess, its JSON lines collected by a thread."""

    def __init__(self, broker, client_id: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actormq", "trace", "client", f"client-id={client_id}", "--format",
             "json", "--data-dir", str(broker.data_dir)], cwd=REPO_ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_interruptible)
        self.lines: "queue.Queue[dict]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def until(self, predicate, timeout: float = 10.0) -> list[dict]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(event)
            if predicate(event):
                return seen
        raise AssertionError(f"trace never showed it; saw {seen}\n{self.proc.stderr.read() if self.proc.poll() is not None else ''}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)       # Ctrl-C
        return self.proc.wait(10)


def _interruptible() -> None:
    """Ctrl-C as at a terminal: a suite started in the background (`cmd &`) hands its
    children SIGINT ignored, and Python then installs no KeyboardInterrupt for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _packets(events: list[dict], kind: str) -> list[str]:
    return [e["type"] for e in events if e["event"] == kind]


def test_trace_streams_every_event_of_one_client(observed):
    client_id = unique("traced")
    topic = unique("trace/t")
    trace = _Trace(observed, client_id)
    try:
        trace.until(lambda e: e["event"] == "trace_started")
        other = connect(observed.port, unique("other"))        # not traced
        client = connect(observed.port, client_id, clean_start=False,
                         properties={"session_expiry_interval": 300})
        client.subscribe(topic, qos=1)
        client.publish(topic, b"to myself", qos=1)
        assert client.expect_one().payload == b"to myself"
        client.disconnect()
        events = trace.until(lambda e: e["event"] == "closed")
        for index in range(3):                 # offline queue holds 1: two are dropped
            other.wait_published(other.publish(topic, f"late{index}".encode(), qos=1))
        events += trace.until(lambda e: e["event"] == "dropped" and e["payload_size"] == 5)
        events += trace.until(lambda e: e["event"] == "dropped")
    finally:
        code = trace.stop()
    assert code == 0
    assert {e["clientid"] for e in events} == {client_id}
    assert all(e["node"] == "actormq@127.0.0.1" and e["worker"] in (0, 1) for e in events)
    incoming = _packets(events, "packet_in")
    outgoing = _packets(events, "packet_out")
    assert incoming[:1] == ["CONNECT"] and {"SUBSCRIBE", "PUBLISH", "PUBACK", "DISCONNECT"} <= set(incoming)
    assert outgoing[:1] == ["CONNACK"] and {"SUBACK", "PUBLISH", "PUBACK"} <= set(outgoing)
    delivery = next(e for e in events if e["event"] == "packet_out" and e["type"] == "PUBLISH")
    assert delivery["topic_name"] == topic and delivery["payload"] == "to myself"
    connect_event = next(e for e in events if e.get("type") == "CONNECT")
    assert connect_event["client_id"] == client_id and connect_event["password"] is None
    hook_calls = [e for e in events if e["event"] == "hook"]
    assert {(e["hook"], e["provider"]) for e in hook_calls} >= {
        ("client.authenticate", "gatekeeper"), ("client.authorize_subscribe", "gatekeeper"),
        ("client.authorize_publish", "gatekeeper")}
    assert all(e["latency_ms"] >= 0 and "answer" in e for e in hook_calls)
    drops = [e for e in events if e["event"] == "dropped"]
    assert len(drops) == 2 and {d["reason"] for d in drops} == {"queue_full"}
    assert not any(e["event"] == "packet_in" and e["clientid"] != client_id for e in events)
