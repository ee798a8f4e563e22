"""Bad input without tracebacks, and what a client that has not connected can cost.

Raw sockets, with golden bytes written here by hand (not by actormq's codec):
- packets only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP) are a
  protocol error: 3.1.1 closes, 5.0 answers DISCONNECT 0x82; also when they
  arrive in the same segment as the CONNECT on two workers (held packets);
- a SUBACK for thousands of refused filters carries a bounded reason string,
  none when it would not fit the client's maximum packet size;
- the CONNECT must be complete within mqtt.connect_timeout of the accept, and
  larger than mqtt.max_connect_packet_size is refused before it is buffered;
- a server DISCONNECT reaches a client that is still sending (receive maximum
  exceeded, as the Paho interoperability test test_flow_control2).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from tests.integration.brokers import HOST, actormq_only, start_broker
from tests.integration.clients import unique

pytestmark = pytest.mark.timeout(60)


# -- golden bytes ------------------------------------------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def connect_bytes(client_id: str, version: int, props: bytes = b"", extra: bytes = b"") -> bytes:
    """CONNECT, clean start, keepalive 60; 5.0 with the given property bytes;
    `extra` is appended to the payload (only for size tests: it makes it invalid)."""
    body = utf8("MQTT") + bytes((version, 0x02)) + b"\x00\x3c"
    if version == 5:
        body += varint(len(props)) + props
    body += utf8(client_id) + extra
    return b"\x10" + varint(len(body)) + body


def large_connect_bytes(client_id: str, version: int, size: int = 60_000) -> bytes:
    """A valid CONNECT of about 2 x size bytes: a will message and a password of `size` each."""
    body = utf8("MQTT") + bytes((version, 0x02 | 0x04 | 0x40 | 0x80)) + b"\x00\x3c"
    body += b"\x00" if version == 5 else b""
    body += utf8(client_id) + (b"\x00" if version == 5 else b"") + utf8("will/topic")
    body += struct.pack(">H", size) + b"w" * size + utf8("user") + struct.pack(">H", size) + b"p" * size
    return b"\x10" + varint(len(body)) + body


NO_PROBLEM_INFO = b"\x17\x00"      # request problem information = 0
V311_CONNACK_OK = b"\x20\x02\x00\x00"
V5_DISCONNECT_PROTOCOL_ERROR = b"\xe0\x02\x82\x00"
V5_DISCONNECT_RECEIVE_MAXIMUM_EXCEEDED = b"\xe0\x02\x93\x00"

SERVER_ONLY = {
    "CONNACK": {4: b"\x20\x02\x00\x00", 5: b"\x20\x03\x00\x00\x00"},
    "SUBACK": {4: b"\x90\x03\x00\x01\x00", 5: b"\x90\x04\x00\x01\x00\x00"},
    "UNSUBACK": {4: b"\xb0\x02\x00\x01", 5: b"\xb0\x04\x00\x01\x00\x00"},
    "PINGRESP": {4: b"\xd0\x00", 5: b"\xd0\x00"},
}


# -- raw socket plumbing -----------------------------------------------------------

def open_socket(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 5.0, reset_is_close: bool = False) -> bytes:
    """Every byte until the server closes; a reset fails the test (it may have lost what
    we were sent) unless `reset_is_close` (nothing was to be sent: a plain close)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"connection still open after {timeout}s, read {data!r}") from None
        except ConnectionResetError:
            if reset_is_close:
                return data
            raise
        if not chunk:
            return data
        data += chunk


def read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def read_packet(sock: socket.socket) -> bytes:
    """One whole packet (fixed header included)."""
    sock.settimeout(5)
    head = read_exactly(sock, 1)
    length, shift, raw_length = 0, 0, b""
    while True:
        digit = read_exactly(sock, 1)
        raw_length += digit
        length |= (digit[0] & 0x7F) << shift
        shift += 7
        if digit[0] < 0x80:
            break
    return head + raw_length + read_exactly(sock, length)


def connected_socket(port: int, version: int) -> socket.socket:
    sock = open_socket(port)
    sock.sendall(connect_bytes(unique("raw"), version, NO_PROBLEM_INFO))
    connack = read_packet(sock)
    assert connack[0] == 0x20 and connack[3] == 0, connack     # return code / reason code 0
    return sock


def log_lines_since(broker, since: int, needle: str, count: int, timeout: float = 3.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in broker.log()[since:].splitlines() if needle in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    broker = start_broker(tmp_path_factory.mktemp("limits1"),
                          settings={"mqtt.receive_maximum": 20, "mqtt.connect_timeout": 2})
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    broker = start_broker(tmp_path_factory.mktemp("limits2"), workers=2)
    yield broker
    broker.stop()


# -- server-to-client packets --------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("name", list(SERVER_ONLY))
def test_server_only_packet_from_a_client_is_a_protocol_error(one_worker, name, version):
    actormq_only("log lines")
    sock = connected_socket(one_worker.port, version)
    since = len(one_worker.log())
    sock.sendall(SERVER_ONLY[name][version] + b"\xc0\x00")    # and a PINGREQ nobody answers
    expected = V5_DISCONNECT_PROTOCOL_ERROR if version == 5 else b""
    assert read_until_closed(sock) == expected
    lines = log_lines_since(one_worker, since, f"{name} is sent by servers only", 1)
    assert len(lines) == 1, one_worker.log()[since:]
    assert "Traceback" not in one_worker.log()[since:]


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("name", list(SERVER_ONLY))
def test_server_only_packet_behind_the_connect_on_two_workers(two_workers, name, version):
    """In the CONNECT's segment: held while the client id is claimed, then refused
    (before: a KeyError in a task, the connection left open, later packets lost)."""
    actormq_only("log lines")
    since = len(two_workers.log())
    sock = open_socket(two_workers.port)
    sock.sendall(connect_bytes(unique("pipelined"), version, NO_PROBLEM_INFO)
                 + SERVER_ONLY[name][version] + b"\xc0\x00")
    data = read_until_closed(sock)
    if version == 4:
        assert data == V311_CONNACK_OK
    else:
        assert data[0] == 0x20 and data[3] == 0x00, data        # CONNACK 0 with properties
        connack_length = 2 + data[1]
        assert data[connack_length:] == V5_DISCONNECT_PROTOCOL_ERROR
    lines = log_lines_since(two_workers, since, f"{name} is sent by servers only", 1)
    assert len(lines) == 1, two_workers.log()[since:]
    assert "Traceback" not in two_workers.log()[since:]


# -- reason strings ----------------------------------------------------------------

def split_packets(data: bytes) -> list[bytes]:
    packets, pos = [], 0
    while pos < len(data):
        length, shift, start = 0, 0, pos + 1
        while True:
            length |= (data[start] & 0x7F) << shift
            shift += 7
            start += 1
            if data[start - 1] < 0x80:
                break
        packets.append(data[pos:start + length])
        pos = start + length
    return packets


def subscribe_bytes(filters: list[str], packet_id: int = 1, version: int = 5) -> bytes:
    body = struct.pack(">H", packet_id) + (b"\x00" if version == 5 else b"")
    body += b"".join(utf8(f) + b"\x01" for f in filters)
    return b"\x82" + varint(len(body)) + body


def suback_without_reason(codes: bytes, packet_id: int = 1) -> bytes:
    body = struct.pack(">H", packet_id) + b"\x00" + codes
    return b"\x90" + varint(len(body)) + body


REFUSED = [f"bad/#/filter-{i:05d}" for i in range(4000)]   # '#' not last: 0x8F each


def test_suback_for_thousands_of_refused_filters_has_a_bounded_reason_string(one_worker):
    sock = open_socket(one_worker.port)
    sock.sendall(connect_bytes(unique("refused"), 5))
    assert read_packet(sock)[3] == 0
    sock.sendall(subscribe_bytes(REFUSED))
    suback = read_packet(sock)
    codes = b"\x8f" * len(REFUSED)
    assert suback.endswith(codes)
    head = 1 + len(varint(len(suback) - 2)) + 2            # fixed header, packet id
    assert suback[head:head + 2] != b"\x00\x8f"              # properties follow
    props_length = (suback[head] & 0x7F) | (suback[head + 1] << 7) if suback[head] & 0x80 \
        else suback[head]
    assert 0 < props_length <= 300                           # bounded
    assert b"\x1f" in suback[head:head + 3]                   # a reason string
    sock.sendall(b"\xc0\x00")
    assert read_packet(sock) == b"\xd0\x00"


def test_reason_string_left_out_when_it_would_not_fit_the_clients_maximum(one_worker):
    codes = b"\x8f" * len(REFUSED)
    exact = suback_without_reason(codes)
    sock = open_socket(one_worker.port)
    maximum = b"\x27" + struct.pack(">I", len(exact) + 20)      # room for no reason string
    sock.sendall(connect_bytes(unique("small"), 5, maximum))
    assert read_packet(sock)[3] == 0
    sock.sendall(subscribe_bytes(REFUSED))
    assert read_packet(sock) == exact


# -- CONNECT: time and size ----------------------------------------------------------

def test_connect_must_complete_within_the_connect_timeout_from_the_accept(one_worker):
    """One byte of a large CONNECT every 0.4 s: each byte used to restart the timer."""
    sock = open_socket(one_worker.port)
    start = time.monotonic()
    head = connect_bytes("slow", 4, extra=b"x" * 1000)
    closed_after = None
    for byte in head[:40]:
        try:
            sock.sendall(bytes((byte,)))
        except OSError:
            closed_after = time.monotonic() - start
            break
        sock.settimeout(0.4)
        try:
            if sock.recv(1) == b"":
                closed_after = time.monotonic() - start
                break
        except socket.timeout:
            pass
        except OSError:         # a reset: closed as well
            closed_after = time.monotonic() - start
            break
    assert closed_after is not None, "still open after 16 s of dribbled CONNECT"
    assert 1.5 <= closed_after <= 4.0, closed_after


@pytest.mark.parametrize("version", [4, 5])
def test_connect_larger_than_max_connect_packet_size_is_refused(one_worker, version):
    """120 KB: under mqtt.max_packet_size (1 MB) but over the 64 KB CONNECT limit."""
    sock = open_socket(one_worker.port)
    packet = large_connect_bytes(unique("big"), version)
    sender = threading.Thread(target=_send_quietly, args=(sock, packet), daemon=True)
    sender.start()
    data = read_until_closed(sock, reset_is_close=version == 4)
    if version == 4:
        assert data == b""
    else:
        text = f"packet of {len(packet)} bytes exceeds 65536".encode()
        props = b"\x1f" + struct.pack(">H", len(text)) + text
        body = b"\x00\x95" + varint(len(props)) + props
        assert data == b"\x20" + varint(len(body)) + body


def test_large_connect_under_the_limit_is_accepted(one_worker):
    sock = open_socket(one_worker.port)
    sock.sendall(large_connect_bytes(unique("fits"), 4, size=30_000))
    assert read_packet(sock) == V311_CONNACK_OK


def test_connect_under_the_limit_then_a_large_publish_in_the_same_segment(one_worker):
    """The small limit is for the CONNECT only: a 200 KB PUBLISH right behind it is fine."""
    sock = open_socket(one_worker.port)
    topic = unique("large")
    subscribe = subscribe_bytes([topic], version=4)
    body = utf8(topic) + b"y" * 200_000
    publish = b"\x30" + varint(len(body)) + body
    sock.sendall(connect_bytes(unique("ok"), 4) + subscribe + publish)
    assert read_packet(sock) == V311_CONNACK_OK
    assert read_packet(sock) == b"\x90\x03\x00\x01\x01"
    assert read_packet(sock) == publish


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


# -- a server DISCONNECT reaches the client ----------------------------------------------

def qos2_publish(topic: str, packet_id: int, payload: bytes) -> bytes:
    body = utf8(topic) + struct.pack(">H", packet_id) + b"\x00" + payload
    return b"\x34" + varint(len(body)) + body


def test_receive_maximum_exceeded_gets_disconnect_0x93_not_a_reset(one_worker):
    """Paho's test_flow_control2 with mqtt.receive_maximum = 20: QoS 2 PUBLISHes
    without PUBREL past the maximum; the client is still sending when the broker
    refuses, and must read DISCONNECT 0x93 rather than a broken pipe."""
    sock = open_socket(one_worker.port)
    sock.sendall(connect_bytes(unique("flow"), 5, NO_PROBLEM_INFO))
    connack = read_packet(sock)
    assert connack[3] == 0
    assert b"\x21\x00\x14" in connack                    # receive maximum 20 announced
    topic = unique("flow")
    burst = b"".join(qos2_publish(topic, i, b"z" * 2000) for i in range(1, 400))
    sender = threading.Thread(target=_send_quietly, args=(sock, burst), daemon=True)
    sender.start()
    packets = split_packets(read_until_closed(sock))
    assert packets[-1] == V5_DISCONNECT_RECEIVE_MAXIMUM_EXCEEDED, packets[-3:]
    pubrecs = packets[:-1]
    assert [p[:4] for p in pubrecs] == [b"\x50" + bytes((len(p) - 2,)) + struct.pack(">H", i)
                                        for i, p in zip(range(1, 21), pubrecs)]
    assert len(pubrecs) == 20
    sender.join(5)
