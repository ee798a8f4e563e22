"""Limits of the stores, seen from clients: a full LMDB store (storage.max_map_size),
the retained.* limits, mqtt.retain_available, and how long persistent sessions
live (mqtt.persistent_client_expiration, MQTT 5 session expiry) across restarts."""

from __future__ import annotations

import time

import pytest

from actormq.transport.codec import Connack, Puback, Publish, Pubrec, Will
from tests.integration.brokers import actormq_only
from tests.integration.clients import connect, unique
from tests.integration.hookplugins import log_with
from tests.integration.rawclient import RawClient
from tests.integration.test_persistence import kill9_all

pytestmark = pytest.mark.timeout(120)
DISC_MODES = ["disc", "disc_only"]
PERSISTENT = {"session_expiry_interval": 3600}
QUOTA_EXCEEDED = 0x97
RETAIN_NOT_SUPPORTED = 0x9A
TINY_STORE = {"storage.map_size": "1MB", "storage.max_map_size": "1MB", "queue.max_offline_messages": 0}
PAYLOAD = 1000


def storage(mode: str) -> dict:
    return {"queue.storage": mode, "retained.storage": mode}


# -- a full store ---------------------------------------------------------------------

def go_offline(port: int, client_id: str, topic: str) -> None:
    client = connect(port, client_id, clean_start=False, properties=PERSISTENT)
    client.subscribe(topic, 1)
    client.disconnect()


def numbered(number: int) -> bytes:
    return f"{number:06d}".encode().ljust(PAYLOAD, b".")


def fill(publisher: RawClient, topic: str, refusals: int = 20, at_most: int = 3000) -> tuple[list, list]:
    """Publish numbered QoS 1 messages until `refusals` in a row were refused;
    returns (numbers acknowledged with 0x00, numbers refused)."""
    accepted, refused = [], []
    for number in range(at_most):
        publisher.send(Publish(topic, numbered(number), 1, packet_id=number % 65535 + 1))
        ack = publisher.expect(Puback, timeout=10)
        assert ack.reason_code in (0, QUOTA_EXCEEDED), f"PUBACK 0x{ack.reason_code:02X}"
        (accepted if ack.reason_code == 0 else refused).append(number)
        if len(refused) >= refusals and refused[-refusals] == number - refusals + 1:
            return accepted, refused
    raise AssertionError(f"the store never filled up ({len(accepted)} messages accepted)")


def full_broker(make_broker, mode: str):
    """A broker with a 1 MB store filled by the offline queue of a persistent subscriber."""
    broker = make_broker(settings=TINY_STORE | storage(mode))
    subscriber_id, topic = unique("offline"), unique("q")
    go_offline(broker.port, subscriber_id, topic)
    publisher = RawClient(broker.port)
    publisher.connect(unique("pub"))
    accepted, refused = fill(publisher, topic)
    assert len(accepted) > 100, "a 1 MB store holds a few hundred 1 kB messages"
    return broker, subscriber_id, topic, publisher, accepted


def assert_still_serving(port: int) -> None:
    """QoS 0 between clean sessions, and QoS 1 to an online clean session."""
    topic = unique("live")
    subscriber = connect(port, unique("clean"))
    subscriber.subscribe(topic + "/0", 0)
    subscriber.subscribe(topic + "/1", 1)
    publisher = RawClient(port)
    publisher.connect(unique("pub"))
    publisher.send(Publish(topic + "/0", b"qos0"))
    publisher.send(Publish(topic + "/1", b"qos1", 1, packet_id=1))
    assert publisher.expect(Puback).reason_code == 0
    assert sorted(m.payload for m in subscriber.expect(2)) == [b"qos0", b"qos1"]


@pytest.mark.parametrize("mode", DISC_MODES)
def test_full_store_refuses_offline_messages_with_0x97_and_keeps_serving(make_broker, mode):
    actormq_only("storage.max_map_size")
    broker, _, topic, publisher, _ = full_broker(make_broker, mode)
    publisher.send(Publish(topic, numbered(0), 2, packet_id=60000))
    assert publisher.expect(Pubrec).reason_code == QUOTA_EXCEEDED
    publisher.send(Publish(unique("kept"), b"r" * PAYLOAD, 1, retain=True, packet_id=60001))
    assert publisher.expect(Puback).reason_code < 0x80, "a retained message is delivered, just not kept"
    assert_still_serving(broker.port)
    full_lines = [line for line in log_with(broker, "is full").splitlines() if "is full" in line]
    assert len(full_lines) == 1, "the full store is logged once, not per message:\n" + "\n".join(full_lines)
    assert "Traceback" not in broker.log()


@pytest.mark.slow
@pytest.mark.parametrize("mode", DISC_MODES)
def test_full_store_loses_no_acknowledged_message_and_recovers_when_drained(make_broker, mode):
    actormq_only("storage.max_map_size")
    broker, subscriber_id, topic, publisher, accepted = full_broker(make_broker, mode)
    kill9_all(broker)
    broker.restart()
    subscriber = connect(broker.port, subscriber_id, clean_start=False, properties=PERSISTENT)
    assert subscriber.connack.session_present
    received = [int(m.payload[:6]) for m in subscriber.drain(quiet=1.0, at_most=60)]
    assert received == accepted, "every message acknowledged with 0x00, once, in order"
    subscriber.disconnect()
    publisher = RawClient(broker.port)
    publisher.connect(unique("pub"))
    publisher.send(Publish(topic, numbered(9999), 1, packet_id=1))
    assert publisher.expect(Puback).reason_code == 0, "the drained store takes messages again"


def test_full_store_closes_a_mqtt311_publisher_instead_of_acknowledging(make_broker):
    actormq_only("storage.max_map_size")
    broker, _, topic, _, _ = full_broker(make_broker, "disc")
    publisher = RawClient(broker.port, version=4)
    publisher.connect(unique("pub311"))
    publisher.send(Publish(topic, numbered(0), 1, packet_id=1))
    packets = publisher.expect_closed(timeout=2)
    assert not any(isinstance(p, Puback) for p in packets), "an unsaved message must not be acknowledged"


# -- retained.* --------------------------------------------------------------------------

def retained_payloads(port: int, topic_filter: str) -> list[bytes]:
    late = connect(port, unique("late"))
    late.subscribe(topic_filter, 1)
    return sorted(m.payload for m in late.drain(quiet=0.4))


def test_retained_max_messages_keeps_the_first_and_still_replaces_and_deletes(make_broker):
    actormq_only("retained.max_messages")
    broker = make_broker(settings={"retained.max_messages": 2})
    prefix = unique("r")
    publisher = connect(broker.port, unique("pub"))
    for leaf in ("a", "b", "c"):
        publisher.publish(f"{prefix}/{leaf}", leaf.encode(), qos=1, retain=True)
    assert retained_payloads(broker.port, f"{prefix}/#") == [b"a", b"b"]
    publisher.publish(f"{prefix}/a", b"a2", qos=1, retain=True)
    publisher.publish(f"{prefix}/b", b"", qos=1, retain=True)
    publisher.publish(f"{prefix}/c", b"c2", qos=1, retain=True)
    assert retained_payloads(broker.port, f"{prefix}/#") == [b"a2", b"c2"]


def test_retained_too_large_is_delivered_but_not_retained(make_broker):
    actormq_only("retained.max_payload_size")
    broker = make_broker(settings={"retained.max_payload_size": 10})
    big, small = unique("big"), unique("small")
    subscriber = connect(broker.port, unique("sub"))
    subscriber.subscribe(big, 1)
    publisher = connect(broker.port, unique("pub"))
    publisher.publish(big, b"x" * 11, qos=1, retain=True)
    publisher.publish(small, b"x" * 10, qos=1, retain=True)
    assert subscriber.expect_one().payload == b"x" * 11
    assert retained_payloads(broker.port, big) == []
    assert retained_payloads(broker.port, small) == [b"x" * 10]


def test_retained_expiry_interval_and_the_message_expiry_wins(make_broker):
    """retained.expiry_interval = 3 s; a message with its own expiry keeps it, shorter or longer."""
    actormq_only("retained.expiry_interval")
    broker = make_broker(settings={"retained.expiry_interval": 3})
    plain, longer, shorter = unique("plain"), unique("longer"), unique("shorter")
    published_at = time.monotonic()
    publisher = connect(broker.port, unique("pub"))
    publisher.publish(plain, b"plain", qos=1, retain=True)
    publisher.publish(longer, b"longer", qos=1, retain=True, properties={"message_expiry_interval": 30})
    publisher.publish(shorter, b"shorter", qos=1, retain=True, properties={"message_expiry_interval": 1})
    late = connect(broker.port, unique("late"))
    late.subscribe(plain, 1)
    message = late.expect_one()
    assert message.payload == b"plain"
    assert "message_expiry_interval" not in message.properties, "the broker's expiry is not the sender's"
    time.sleep(max(0.0, published_at + 1.2 - time.monotonic()))
    assert retained_payloads(broker.port, plain) == [b"plain"]
    assert retained_payloads(broker.port, shorter) == []
    time.sleep(max(0.0, published_at + 3.2 - time.monotonic()))
    assert retained_payloads(broker.port, plain) == []
    assert retained_payloads(broker.port, longer) == [b"longer"]


def test_retain_unavailable_refuses_retained_publish_with_0x9a(make_broker):
    broker = make_broker(settings={"mqtt.retain_available": "false"})
    topic = unique("r")
    client = RawClient(broker.port)
    connack = client.connect(unique("c"))
    assert connack.properties.get("retain_available") == 0
    client.send(Publish(topic, b"plain", 1, packet_id=1))
    assert client.expect(Puback).reason_code < 0x80
    client.send(Publish(topic, b"kept", 1, retain=True, packet_id=2))
    client.expect_disconnect(RETAIN_NOT_SUPPORTED)


def test_retain_unavailable_closes_a_mqtt311_retained_publish(make_broker):
    broker = make_broker(settings={"mqtt.retain_available": "false"})
    client = RawClient(broker.port, version=4)
    client.connect(unique("c"))
    client.send(Publish(unique("r"), b"kept", 0, retain=True))
    client.expect_disconnect(None)


def test_retain_unavailable_refuses_a_retained_will_at_connect(make_broker):
    broker = make_broker(settings={"mqtt.retain_available": "false"})
    client = RawClient(broker.port)
    connack = client.connect(unique("c"), will=Will(unique("w"), b"bye", 0, True), check=False)
    assert isinstance(connack, Connack) and connack.reason_code == RETAIN_NOT_SUPPORTED


# -- session lifetimes ----------------------------------------------------------------------

def leave_session(port: int, client_id: str, version: int, expiry: int | None = None) -> None:
    props = {"session_expiry_interval": expiry} if version == 5 else None
    client = connect(port, client_id, version=version, clean_start=False, properties=props)
    client.subscribe(unique("t"), 1)
    client.disconnect()


def session_present(port: int, client_id: str, version: int) -> bool:
    props = PERSISTENT if version == 5 else None
    client = connect(port, client_id, version=version, clean_start=False, properties=props)
    present = client.connack.session_present
    client.disconnect()
    return present


def test_persistent_client_expiration_ends_an_unused_mqtt311_session(make_broker):
    actormq_only("mqtt.persistent_client_expiration")
    broker = make_broker(settings={"mqtt.persistent_client_expiration": "1s"})
    soon, late = unique("soon"), unique("late")
    leave_session(broker.port, soon, 4)
    leave_session(broker.port, late, 4)
    assert session_present(broker.port, soon, 4), "kept within the expiration"
    time.sleep(2)
    assert not session_present(broker.port, late, 4), "gone after the expiration"


@pytest.mark.slow
@pytest.mark.parametrize("version", [4, 5])
def test_session_expiry_counts_across_a_restart(make_broker, version):
    """Sessions left with a 5 s expiry: one is resumed just after a restart (still
    within it), one is asked for once the 5 s are over (gone), one never expires."""
    actormq_only("mqtt.persistent_client_expiration")
    broker = make_broker(settings={"mqtt.persistent_client_expiration": "5s"})
    resumed, expired, forever = unique("resumed"), unique("expired"), unique("forever")
    left_at = time.monotonic()
    for client_id in (resumed, expired):
        leave_session(broker.port, client_id, version, expiry=5)
    if version == 5:
        leave_session(broker.port, forever, 5, expiry=0xFFFFFFFF)
    broker.restart()
    assert time.monotonic() - left_at < 4.5, "the restart took too long for this test"
    assert session_present(broker.port, resumed, version)
    time.sleep(max(0.0, left_at + 5.5 - time.monotonic()))
    assert not session_present(broker.port, expired, version)
    if version == 5:
        assert session_present(broker.port, forever, 5)


def test_an_expired_session_is_gone_after_the_broker_was_down(make_broker):
    actormq_only("mqtt.persistent_client_expiration")
    broker = make_broker(settings={"mqtt.persistent_client_expiration": "1s"})
    mqtt311, mqtt5 = unique("v4"), unique("v5")
    leave_session(broker.port, mqtt311, 4)
    leave_session(broker.port, mqtt5, 5, expiry=1)
    broker.stop()
    time.sleep(1.5)
    broker.start()
    assert not session_present(broker.port, mqtt311, 4)
    assert not session_present(broker.port, mqtt5, 5)
