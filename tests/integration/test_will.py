"""Will messages: sent on an abnormal close, kept quiet on a normal DISCONNECT,
QoS and retain honoured, MQTT 5 DISCONNECT 0x04 and the will delay interval."""

import time

import pytest

from tests.integration.brokers import actormq_only
from tests.integration.clients import Will, connect, unique

pytestmark = pytest.mark.timeout(60)


def watch(port, topic, qos=2):
    watcher = connect(port, unique("watch"))
    watcher.subscribe(topic, qos)
    return watcher


@pytest.mark.parametrize("version", [4, 5])
def test_will_is_sent_when_the_socket_drops(shared_broker, version):
    topic = unique("will")
    watcher = watch(shared_broker.port, topic)
    client = connect(shared_broker.port, unique("dying"), version=version,
                     will=Will(topic, b"gone"))
    client.drop()
    message = watcher.expect_one()
    assert (message.topic, message.payload) == (topic, b"gone")


def test_will_qos_and_retain_are_honoured(shared_broker):
    topic = unique("will")
    watcher = watch(shared_broker.port, topic, qos=2)
    client = connect(shared_broker.port, unique("dying"), will=Will(topic, b"kept", qos=1, retain=True))
    client.drop()
    live = watcher.expect_one()
    assert (live.payload, live.qos) == (b"kept", 1)

    late = connect(shared_broker.port, unique("late"))
    late.subscribe(topic, 2)
    retained = late.expect_one()
    assert (retained.payload, retained.qos, retained.retain) == (b"kept", 1, True)
    late.publish(topic, b"", retain=True)  # leave no retained message behind


@pytest.mark.parametrize("version", [4, 5])
def test_will_is_not_sent_on_normal_disconnect(shared_broker, version):
    topic = unique("will")
    watcher = watch(shared_broker.port, topic)
    client = connect(shared_broker.port, unique("polite"), version=version, will=Will(topic))
    client.disconnect()
    watcher.expect_none(0.7)


def test_will_is_sent_on_disconnect_with_will_message_reason(shared_broker):
    topic = unique("will")
    watcher = watch(shared_broker.port, topic)
    client = connect(shared_broker.port, unique("asks"), will=Will(topic, b"asked"))
    client.disconnect(reason=0x04)
    assert watcher.expect_one().payload == b"asked"


def test_will_delay_interval_delays_the_will(shared_broker):
    topic = unique("will")
    watcher = watch(shared_broker.port, topic)
    client = connect(shared_broker.port, unique("late"), clean_start=False,
                     properties={"session_expiry_interval": 60},
                     will=Will(topic, b"delayed", properties={"will_delay_interval": 1}))
    dropped_at = time.monotonic()
    client.drop()
    message = watcher.expect_one(timeout=4)
    elapsed = time.monotonic() - dropped_at
    assert message.payload == b"delayed"
    assert 0.8 <= elapsed <= 3.0, f"will arrived after {elapsed:.2f}s, expected about 1s"


def test_will_is_not_sent_when_the_client_returns_within_the_delay(shared_broker):
    topic, client_id = unique("will"), unique("back")
    watcher = watch(shared_broker.port, topic)
    session = {"session_expiry_interval": 60}
    will = Will(topic, b"never", properties={"will_delay_interval": 1})
    connect(shared_broker.port, client_id, clean_start=False, properties=session, will=will).drop()
    back = connect(shared_broker.port, client_id, clean_start=False, properties=session)
    assert back.connack.session_present
    watcher.expect_none(2.0)
    back.disconnect()


def test_will_delay_is_capped_by_session_expiry(shared_broker):
    actormq_only("mosquitto 2.0 waits for the whole will delay (eclipse-mosquitto/mosquitto#3505)")
    topic = unique("will")
    watcher = watch(shared_broker.port, topic)
    client = connect(shared_broker.port, unique("short"), clean_start=False,
                     properties={"session_expiry_interval": 0},
                     will=Will(topic, b"now", properties={"will_delay_interval": 30}))
    client.drop()
    assert watcher.expect_one(timeout=3).payload == b"now"
