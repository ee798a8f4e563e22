"""Durability answers between workers only where a message can be written
(`actormq run -w 2`, `queue.storage = disc`, clients pinned with
`listener.tcp.worker_ports`): a QoS 1 message to a clean subscriber on the
other worker does not wait for that worker's answer
(`$SYS/broker/bus/publish/durable` stays; only one in ASK_EVERY would, to
pace the publishers), one to a worker holding a persistent session does, and
what was acknowledged survives kill -9; once the persistent session is gone
the answers stop again."""

from __future__ import annotations

import time

import pytest

from actormq.actors.forwarding import ASK_EVERY
from tests.integration.clients import TestClient, connect, unique
from tests.integration.test_workers import numbers, publish_numbers, routed
from tests.integration.test_workers_core import start_node

pytestmark = pytest.mark.timeout(90)

PERSISTENT = {"session_expiry_interval": 3600}
QUIET_SECONDS = 1.0         # actors.durability.QUIET_SECONDS


def durable_asks(watcher: TestClient, at_least: int = 0) -> int:
    """The latest $SYS/broker/bus/publish/durable value once it is at least
    `at_least` (each worker reports its counters to the others every 0.25 s)."""
    deadline = time.monotonic() + 5
    value = -1
    while value < at_least or time.monotonic() < deadline - 3.5:
        assert time.monotonic() < deadline, f"durable asks stayed at {value}, expected {at_least}"
        for message in watcher.collect(0.3):
            value = int(message.payload)
    return value


@pytest.fixture
def node(tmp_path):
    started = start_node(tmp_path, **{"queue.storage": "disc", "sys_interval": 1})
    yield started
    started.broker.stop()


def watch_asks(node) -> TestClient:
    watcher = connect(node.ports[0], unique("sys"))
    watcher.subscribe("$SYS/broker/bus/publish/durable", 0)
    return watcher


def test_only_workers_holding_persistent_sessions_are_asked_for_durability(node):
    subscriber_side, publisher_side = node.ports
    topic = unique("asks")
    watcher = watch_asks(node)
    clean = connect(subscriber_side, unique("clean"))
    clean.subscribe(topic, 1)
    publisher = connect(publisher_side, unique("pub"))
    routed(publisher, topic, clean)

    assert 10 < ASK_EVERY
    publish_numbers(publisher, topic, range(10))
    assert numbers(clean) == list(range(10))
    baseline = durable_asks(watcher)
    assert baseline == 0, "a clean subscriber's worker was asked for durability"

    away_id = unique("away")
    away = connect(subscriber_side, away_id, clean_start=False, properties=PERSISTENT)
    away.subscribe(topic, 1)
    away.disconnect()
    publish_numbers(publisher, topic, range(10, 20))
    assert numbers(clean) == list(range(10, 20))
    assert durable_asks(watcher, at_least=10) == 10

    node.broker.kill9()
    node.broker.restart()
    back = connect(node.broker.port, away_id, clean_start=False, properties=PERSISTENT)
    assert back.connack.session_present
    assert [int(m.payload) for m in back.expect(10, timeout=10)] == list(range(10, 20))


def test_the_answers_stop_once_the_last_persistent_session_ended(node):
    subscriber_side, publisher_side = node.ports
    topic = unique("quiet")
    watcher = watch_asks(node)
    away_id = unique("away")
    away = connect(subscriber_side, away_id, clean_start=False, properties=PERSISTENT)
    away.subscribe(topic, 1)
    publisher = connect(publisher_side, unique("pub"))
    routed(publisher, topic, away)
    publish_numbers(publisher, topic, range(5))
    assert numbers(away) == list(range(5))
    asked = durable_asks(watcher, at_least=5)

    away.disconnect()
    connect(subscriber_side, away_id, clean_start=True).disconnect()    # session discarded
    clean = connect(subscriber_side, unique("clean"))
    clean.subscribe(topic, 1)
    routed(publisher, topic, clean)
    time.sleep(QUIET_SECONDS + 0.5)
    publish_numbers(publisher, topic, range(5, 10))
    assert numbers(clean) == list(range(5, 10))
    assert durable_asks(watcher) == asked, "asked for durability after the last disc session"
