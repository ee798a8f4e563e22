"""CONNECT / CONNACK: return and reason codes, clean session and session expiry,
the session-present flag, empty client ids, keep alive and session takeover."""

import time

import pytest

from actormq.transport.codec import Connack, Pingreq, Pingresp, Will, connack_return_code_v311
from tests.integration.brokers import expected_reason, reference_broker
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)

# Mosquitto checks keep alive only every few seconds; actormq must be prompt.
KEEPALIVE_MARGIN = 6.0 if reference_broker() else 1.0
PERSISTENT = {"session_expiry_interval": 300}
# Mosquitto sends 0x8E only from 2.0.15 on (eclipse-mosquitto/mosquitto#2607).
SESSION_TAKEN_OVER = expected_reason(0x8E, mosquitto=None)


# -- return codes and reason codes -------------------------------------------

def test_mqtt311_unacceptable_protocol_level_gets_return_code_1_then_close(shared_broker):
    raw = RawClient(shared_broker.port, version=4)
    connack = raw.connect(unique("lvl"), protocol_level=6, check=False)
    assert isinstance(connack, Connack), f"expected CONNACK, got {connack}"
    assert connack_return_code_v311(connack.reason_code) == 1
    assert raw.expect_closed(2) == []


def test_mqtt311_accepted_connack_is_return_code_0(shared_broker):
    client = connect(shared_broker.port, unique("ok"), version=4)
    assert (client.connack.reason_code, client.connack.session_present) == (0, False)


def test_mqtt5_will_qos_above_maximum_qos_is_refused_with_0x9b(make_broker):
    broker = make_broker(settings={"mqtt.max_qos": 1})
    raw = RawClient(broker.port, version=5)
    connack = raw.connect(unique("will"), will=Will("w", b"x", qos=2), check=False)
    assert isinstance(connack, Connack) and connack.reason_code == 0x9B, connack
    assert raw.expect_closed(2) == []


def test_mqtt5_connack_announces_maximum_qos(make_broker):
    broker = make_broker(settings={"mqtt.max_qos": 1})
    client = connect(broker.port, unique("caps"))
    assert client.connack.properties.get("maximum_qos") == 1


def test_mqtt5_too_long_client_id_is_refused_with_0x85(make_broker):
    broker = make_broker(settings={"mqtt.max_client_id_len": 23})
    raw = RawClient(broker.port, version=5)
    connack = raw.connect("x" * 24, check=False)
    assert isinstance(connack, Connack) and connack.reason_code == 0x85, connack
    raw.expect_closed(2)


# -- empty client id -----------------------------------------------------------

def test_mqtt311_empty_client_id_with_clean_session_is_accepted(shared_broker):
    client = connect(shared_broker.port, "", version=4, clean_start=True)
    topic = unique("anon")
    client.subscribe(topic, 1)
    client.publish(topic, b"hi", qos=1)
    assert client.expect_one().payload == b"hi"


def test_mqtt311_empty_client_id_without_clean_session_gets_return_code_2(shared_broker):
    raw = RawClient(shared_broker.port, version=4)
    connack = raw.connect("", clean_start=False, check=False)
    assert isinstance(connack, Connack), f"expected CONNACK, got {connack}"
    assert connack_return_code_v311(connack.reason_code) == 2
    assert raw.expect_closed(2) == []


def test_mqtt5_empty_client_id_gets_an_assigned_client_identifier(shared_broker):
    first = connect(shared_broker.port, "")
    second = connect(shared_broker.port, "")
    ids = [c.connack.properties.get("assigned_client_identifier") for c in (first, second)]
    assert all(ids) and ids[0] != ids[1], ids
    assert not first.closed.is_set(), "the second assigned id took over the first session"


# -- clean session, session expiry, session present ----------------------------

def _leave_a_persistent_session(port, client_id, topic, version):
    client = connect(port, client_id, version=version, clean_start=False,
                     properties=PERSISTENT if version == 5 else None)
    assert not client.connack.session_present
    client.subscribe(topic, 1)
    client.disconnect()
    connect(port, unique("pub"), version=version).publish(topic, b"while away", qos=1)


@pytest.mark.parametrize("version", [4, 5])
def test_persistent_session_is_resumed_with_session_present(shared_broker, version):
    client_id, topic = unique("persist"), unique("t")
    _leave_a_persistent_session(shared_broker.port, client_id, topic, version)
    back = connect(shared_broker.port, client_id, version=version, clean_start=False,
                   properties=PERSISTENT if version == 5 else None)
    assert back.connack.session_present
    assert back.expect_one().payload == b"while away"


@pytest.mark.parametrize("version", [4, 5])
def test_clean_start_discards_the_session(shared_broker, version):
    client_id, topic = unique("clean"), unique("t")
    _leave_a_persistent_session(shared_broker.port, client_id, topic, version)
    fresh = connect(shared_broker.port, client_id, version=version, clean_start=True)
    assert not fresh.connack.session_present
    fresh.expect_none(0.5)
    fresh.disconnect()
    again = connect(shared_broker.port, client_id, version=version, clean_start=False,
                    properties=PERSISTENT if version == 5 else None)
    assert not again.connack.session_present
    connect(shared_broker.port, unique("pub"), version=version).publish(topic, b"x", qos=1)
    again.expect_none(0.5)


def test_mqtt5_session_expiry_zero_ends_the_session_at_disconnect(shared_broker):
    client_id, topic = unique("zero"), unique("t")
    client = connect(shared_broker.port, client_id, clean_start=False,
                     properties={"session_expiry_interval": 0})
    client.subscribe(topic, 1)
    client.disconnect()
    back = connect(shared_broker.port, client_id, clean_start=False, properties=PERSISTENT)
    assert not back.connack.session_present


@pytest.mark.parametrize("version", [4, 5])
def test_first_connect_has_no_session_present(shared_broker, version):
    client = connect(shared_broker.port, unique("first"), version=version, clean_start=False,
                     properties=PERSISTENT if version == 5 else None)
    assert not client.connack.session_present


# -- keep alive ------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_keepalive_silence_closes_the_connection(shared_broker, version):
    raw = RawClient(shared_broker.port, version=version)
    raw.connect(unique("quiet"), keepalive=1)
    started = time.monotonic()
    raw.expect_closed(timeout=1.5 + KEEPALIVE_MARGIN)
    assert time.monotonic() - started >= 1.0, "closed before the keep alive ran out"


def test_mqtt5_keepalive_timeout_sends_disconnect_0x8d(shared_broker):
    raw = RawClient(shared_broker.port, version=5)
    raw.connect(unique("quiet"), keepalive=1)
    raw.expect_disconnect(expected_reason(0x8D, mosquitto=None), timeout=1.5 + KEEPALIVE_MARGIN)


def test_pinging_client_stays_connected(shared_broker):
    raw = RawClient(shared_broker.port, version=5)
    raw.connect(unique("pinger"), keepalive=1)
    for _ in range(6):
        raw.send(Pingreq())
        raw.expect(Pingresp, timeout=2)
        time.sleep(0.5)


def test_server_keepalive_is_announced_and_enforced(make_broker):
    broker = make_broker(settings={"mqtt.server_keepalive": 1})
    raw = RawClient(broker.port, version=5)
    connack = raw.connect(unique("told"), keepalive=60)
    assert connack.properties.get("server_keep_alive") == 1
    raw.expect_disconnect(0x8D, timeout=1.5 + KEEPALIVE_MARGIN)


# -- takeover ---------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_second_connect_with_the_same_client_id_takes_over(shared_broker, version):
    client_id, topic = unique("twin"), unique("t")
    first = connect(shared_broker.port, client_id, version=version)
    second = connect(shared_broker.port, client_id, version=version)
    assert first.wait_closed(3), "the first connection was not closed"
    if version == 5:
        assert first.disconnect_reason == SESSION_TAKEN_OVER
    second.subscribe(topic, 1)
    second.publish(topic, b"still here", qos=1)
    assert second.expect_one().payload == b"still here"
    assert not second.closed.is_set()


def test_takeover_keeps_a_persistent_session(shared_broker):
    client_id, topic = unique("twin"), unique("t")
    first = connect(shared_broker.port, client_id, clean_start=False, properties=PERSISTENT)
    first.subscribe(topic, 1)
    second = connect(shared_broker.port, client_id, clean_start=False, properties=PERSISTENT)
    assert second.connack.session_present
    assert first.wait_closed(3)
    connect(shared_broker.port, unique("pub")).publish(topic, b"to the new owner", qos=1)
    assert second.expect_one().payload == b"to the new owner"


def test_raw_takeover_sends_disconnect_0x8e_then_closes(shared_broker):
    client_id = unique("twin")
    first = RawClient(shared_broker.port, version=5)
    first.connect(client_id)
    RawClient(shared_broker.port, version=5).connect(client_id)
    first.expect_disconnect(SESSION_TAKEN_OVER, timeout=3)
