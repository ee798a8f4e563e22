"""Bad input on a raw socket: malformed packets, oversize packets, a first packet
that is not CONNECT, a second CONNECT, bad UTF-8 and wildcards in a topic name.

3.1.1: the server closes the connection. 5.0: it sends DISCONNECT with the
reason code (0x81 malformed, 0x95 too large, 0x82 protocol error, 0x90 topic
name invalid) and closes. Either way another client is unharmed and the log
names the offending client or peer.
"""

import time
from dataclasses import dataclass
from typing import Callable

import pytest

from actormq.transport.codec import Pingreq, Publish
from tests.integration.brokers import expected_reason, start_broker
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def strict_broker(tmp_path_factory):
    broker = start_broker(tmp_path_factory.mktemp("bad"), settings={"mqtt.max_packet_size": "1KB"})
    yield broker
    broker.stop()


@pytest.fixture
def bystander(strict_broker):
    """A client connected before the bad one; it must keep working."""
    client = connect(strict_broker.port, unique("bystander"))
    yield client
    topic = unique("alive")
    client.subscribe(topic, 1)
    client.publish(topic, b"still fine", qos=1)
    assert client.expect_one().payload == b"still fine"
    assert not client.closed.is_set()


# -- golden bytes, written here by hand (not by actormq's codec) ---------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def frames(data: bytes) -> list[bytes]:
    """Split a byte stream into whole MQTT packets (fixed header included)."""
    out, at = [], 0
    while at < len(data):
        length, shift, end = 0, 0, at + 1
        while True:
            byte = data[end]
            length |= (byte & 0x7F) << shift
            shift, end = shift + 7, end + 1
            if not byte & 0x80:
                break
        out.append(data[at:end + length])
        at = end + length
    return out


def connect_bytes(client_id: str, version: int) -> bytes:
    """CONNECT, clean start, keepalive 60, no properties."""
    body = utf8("MQTT") + bytes((version, 0x02)) + b"\x00\x3c" + (b"\x00" if version == 5 else b"")
    body += utf8(client_id)
    return b"\x10" + varint(len(body)) + body


def publish_with_topic_bytes(topic: bytes, version: int, payload: bytes = b"payload") -> bytes:
    """A QoS 0 PUBLISH whose topic name is given as raw bytes (to send invalid ones)."""
    body = len(topic).to_bytes(2, "big") + topic + (b"\x00" if version == 5 else b"") + payload
    return b"\x30" + varint(len(body)) + body


def subscribe_with_flags_0(version: int) -> bytes:
    """A SUBSCRIBE whose fixed-header flags are 0000 instead of 0010."""
    props = b"\x00" if version == 5 else b""
    body = b"\x00\x01" + props + b"\x00\x01a\x00"
    return bytes([0x80, len(body)]) + body


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[int, str], bytes]  # (protocol version, client id) -> the bad bytes
    reason_code: int
    mosquitto: int | None  # what Mosquitto 2.0.11 sends instead (None: closes silently)


CASES = [
    Case("bad remaining length", lambda v, cid: b"\x30\xff\xff\xff\xff\x01", 0x81, None),
    Case("reserved flags on SUBSCRIBE", lambda v, cid: subscribe_with_flags_0(v), 0x81, 0x81),
    Case("reserved flags on PUBREL", lambda v, cid: b"\x60\x02\x00\x01", 0x81, None),
    Case("QoS 3 PUBLISH", lambda v, cid: b"\x36" + publish_with_topic_bytes(b"t", v)[1:], 0x81, 0x81),
    Case("oversize packet", lambda v, cid: publish_with_topic_bytes(b"big", v, b"x" * 2000),
         0x95, 0x95),
    Case("second CONNECT", lambda v, cid: connect_bytes(cid, v), 0x82, None),
    Case("bad UTF-8 in a topic name", lambda v, cid: publish_with_topic_bytes(b"a/\xff\xfe", v),
         0x81, 0x81),
    Case("wildcard in a topic name", lambda v, cid: publish_with_topic_bytes(b"a/+/b", v), 0x90, 0x82),
]


def assert_logged(broker, since: int, *names: str, timeout: float = 3.0) -> None:
    """A log line written after `since` mentions one of `names`."""
    deadline = time.monotonic() + timeout
    while True:
        fresh = broker.log()[since:]
        if any(name in line for line in fresh.splitlines() for name in names):
            return
        assert time.monotonic() < deadline, f"no log line mentions {names}; new log:\n{fresh}"
        time.sleep(0.1)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_packet_closes_only_the_offender(strict_broker, bystander, case, version):
    client_id = unique("bad")
    raw = RawClient(strict_broker.port, version=version)
    raw.connect(client_id)
    since = len(strict_broker.log())
    raw.send_bytes(case.build(version, client_id))
    connack_end = len(raw.raw)
    if version == 5:
        reason = expected_reason(case.reason_code, mosquitto=case.mosquitto)
        raw.expect_disconnect(reason)
        sent = frames(bytes(raw.raw[connack_end:]))
        if reason is not None:      # DISCONNECT, the reason code, then properties
            assert sent and sent[-1][0] == 0xE0 and sent[-1][2] == reason, sent
    else:
        assert raw.expect_closed() == []
        assert raw.raw[connack_end:] == b"", "3.1.1 has no DISCONNECT from the server"
    assert_logged(strict_broker, since, client_id, raw.local_address)


@pytest.mark.parametrize("first", [Pingreq(), Publish("t", b"x")], ids=["PINGREQ", "PUBLISH"])
def test_first_packet_that_is_not_connect_closes(strict_broker, bystander, first):
    """No protocol version is agreed yet, so there is nothing to answer: just close."""
    since = len(strict_broker.log())
    raw = RawClient(strict_broker.port, version=4)
    raw.send(first)
    assert raw.expect_closed() == []
    assert_logged(strict_broker, since, raw.local_address)


def test_garbage_instead_of_connect_closes(strict_broker, bystander):
    since = len(strict_broker.log())
    raw = RawClient(strict_broker.port, version=4)
    raw.send_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.expect_closed() == []
    assert_logged(strict_broker, since, raw.local_address)
