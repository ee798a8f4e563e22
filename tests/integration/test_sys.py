"""$SYS topics: published every sys_interval and changing when clients act."""

import time

import pytest

from tests.integration.brokers import start_broker, sys_topic
from tests.integration.clients import connect, unique

pytestmark = pytest.mark.timeout(60)

TOPICS = [
    "$SYS/broker/uptime", "$SYS/broker/version",
    "$SYS/broker/clients/connected", "$SYS/broker/clients/disconnected",
    "$SYS/broker/messages/received", "$SYS/broker/messages/sent",
    "$SYS/broker/bytes/received", "$SYS/broker/bytes/sent",
    "$SYS/broker/subscriptions/count", "$SYS/broker/retained messages/count",
    "$SYS/broker/messages/dropped",
]


@pytest.fixture(scope="module")
def sys_broker(tmp_path_factory):
    broker = start_broker(tmp_path_factory.mktemp("sys"), settings={"sys_interval": 1})
    yield broker
    broker.stop()


class SysWatcher:
    """A client subscribed to $SYS/# that remembers the latest value of each topic."""

    def __init__(self, port: int) -> None:
        self.client = connect(port, unique("sys"))
        self.client.subscribe("$SYS/#", 0)
        self.latest: dict[str, str] = {}

    def _pump(self, timeout: float) -> None:
        for message in self.client.collect(timeout):
            self.latest[message.topic] = message.payload.decode()

    def value(self, name: str, timeout: float = 5.0) -> str:
        topic = sys_topic(name)
        deadline = time.monotonic() + timeout
        while topic not in self.latest:
            assert time.monotonic() < deadline, f"{topic} not published within {timeout}s"
            self._pump(0.2)
        return self.latest[topic]

    def number(self, name: str) -> float:
        return float(self.value(name).split()[0])

    def wait_for_at_least(self, name: str, target: float, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while (current := self.number(name)) < target:
            assert time.monotonic() < deadline, f"{name} stayed at {current}, expected >= {target}"
            self._pump(0.2)
        return current


@pytest.fixture
def watcher(sys_broker):
    """A watcher whose values come from a $SYS round published after it subscribed
    (so that earlier tests' clients are no longer counted)."""
    watcher = SysWatcher(sys_broker.port)
    first = watcher.number("$SYS/broker/uptime")
    watcher.wait_for_at_least("$SYS/broker/uptime", first + 1)
    watcher._pump(0.3)
    return watcher


def test_every_sys_topic_is_published(watcher):
    missing = []
    for name in TOPICS:
        try:
            watcher.value(name, timeout=3)
        except AssertionError:
            missing.append(name)
    assert not missing, f"never published: {missing}"
    assert watcher.value("$SYS/broker/version").strip()


def test_uptime_grows(watcher):
    start = watcher.number("$SYS/broker/uptime")
    watcher.wait_for_at_least("$SYS/broker/uptime", start + 1, timeout=4)


def test_connected_clients_are_counted(sys_broker, watcher):
    before = watcher.number("$SYS/broker/clients/connected")
    others = [connect(sys_broker.port, unique("c")) for _ in range(2)]
    watcher.wait_for_at_least("$SYS/broker/clients/connected", before + 2)
    for client in others:
        client.disconnect()


def test_disconnected_persistent_sessions_are_counted(sys_broker, watcher):
    before = watcher.number("$SYS/broker/clients/disconnected")
    connect(sys_broker.port, unique("away"), clean_start=False,
            properties={"session_expiry_interval": 60}).disconnect()
    watcher.wait_for_at_least("$SYS/broker/clients/disconnected", before + 1)


def test_message_and_byte_counters_grow(sys_broker, watcher):
    names = ["messages/received", "messages/sent", "bytes/received", "bytes/sent"]
    before = {name: watcher.number(f"$SYS/broker/{name}") for name in names}
    topic = unique("count")
    subscriber = connect(sys_broker.port, unique("sub"))
    subscriber.subscribe(topic, 1)
    publisher = connect(sys_broker.port, unique("pub"))
    for _ in range(5):
        publisher.publish(topic, b"x" * 100, qos=1)
    subscriber.expect(5)
    grow = {"messages/received": 5, "messages/sent": 5, "bytes/received": 500, "bytes/sent": 500}
    for name, delta in grow.items():
        watcher.wait_for_at_least(f"$SYS/broker/{name}", before[name] + delta)


def test_subscriptions_are_counted(sys_broker, watcher):
    before = watcher.number("$SYS/broker/subscriptions/count")
    client = connect(sys_broker.port, unique("subs"))
    client.subscribe(unique("a"), 0)
    client.subscribe(unique("b"), 1)
    watcher.wait_for_at_least("$SYS/broker/subscriptions/count", before + 2)


def test_retained_messages_are_counted(sys_broker, watcher):
    before = watcher.number("$SYS/broker/retained messages/count")
    topic = unique("kept")
    publisher = connect(sys_broker.port, unique("pub"))
    publisher.publish(topic, b"r", qos=1, retain=True)
    try:
        watcher.wait_for_at_least("$SYS/broker/retained messages/count", before + 1)
    finally:
        publisher.publish(topic, b"", qos=1, retain=True)
