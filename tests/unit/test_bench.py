"""actormq bench: histogram and percentiles, loss / duplicate detection, the
PUBLISH template and the inbound scanner, and one run of `actormq bench sub`
+ `actormq bench pub` against a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from actormq.bench.client import Endpoint, MqttClient, PublishTemplate
from actormq.bench.connector import RawConnector
from actormq.bench.report import Summary, latency_summary
from actormq.bench.stats import (
    BUCKETS, HEADER, LatencyHistogram, SequenceTracker, bucket_high, bucket_index, bucket_low,
)
from actormq.transport import codec
from actormq.transport.codec import StreamDecoder
from tests.integration.certs import CertificateAuthority

REPO_ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO = "/usr/sbin/mosquitto"


# -- histogram -----------------------------------------------------------------------


def test_bucket_bounds_contain_value_within_one_percent():
    values = list(range(0, 2000)) + [random.Random(7).randrange(1 << 50) for _ in range(5000)]
    for value in values + [(1 << 63) - 1]:
        index = bucket_index(value)
        assert 0 <= index < BUCKETS
        assert bucket_low(index) <= value <= bucket_high(index)
        assert bucket_high(index) - bucket_low(index) <= max(0, value) / 128


def test_buckets_are_contiguous():
    for index in range(BUCKETS - 1):
        assert bucket_high(index) + 1 == bucket_low(index + 1)


def test_percentiles_of_a_uniform_distribution():
    histogram = LatencyHistogram()
    for value in range(1, 100_001):
        histogram.record(value)
    assert histogram.total == 100_000
    for q in (50, 90, 99):
        assert histogram.percentile(q) == pytest.approx(q * 1000, rel=0.01)
    assert histogram.max() == pytest.approx(100_000, rel=0.01)
    assert histogram.mean() == pytest.approx(50_000, rel=0.01)


def test_percentile_of_a_single_outlier_and_of_nothing():
    histogram = LatencyHistogram()
    assert histogram.percentile(50) is None and latency_summary(histogram) is None
    for _ in range(99):
        histogram.record(1000)
    histogram.record(5_000_000)
    assert histogram.percentile(99) == pytest.approx(1000, rel=0.01)
    assert histogram.percentile(100) == pytest.approx(5_000_000, rel=0.01)


def test_summary_names_the_tail_p99_9_and_max_in_microseconds():
    histogram = LatencyHistogram()
    for value in range(1, 10_001):      # 1 µs .. 10 ms
        histogram.record(value * 1000)
    summary = latency_summary(histogram, unit_ns=1000)
    assert list(summary) == ["p50", "p90", "p99", "p99.9", "max", "mean"]
    assert summary["p99"] == pytest.approx(9_900, rel=0.01)
    assert summary["p99.9"] == pytest.approx(9_990, rel=0.01)
    assert summary["max"] == pytest.approx(10_000, rel=0.01)


def test_negative_latency_counts_as_zero():
    tracker = SequenceTracker(LatencyHistogram())
    tracker.observe(HEADER.pack(1, 0, 2_000), [0], 1_000)
    assert tracker.histogram.percentile(50) == 0


# -- loss and duplicates --------------------------------------------------------------


def _feed(tracker: SequenceTracker, *pairs: tuple[int, int]) -> None:
    buf = b"".join(HEADER.pack(publisher, seq, 0) for publisher, seq in pairs)
    tracker.observe(buf, list(range(0, len(buf), HEADER.size)), 10)


def test_in_order_streams_of_two_publishers():
    tracker = SequenceTracker(LatencyHistogram())
    _feed(tracker, *[(p, s) for s in range(100) for p in (1, 2)])
    counts = tracker.counts({1: 100, 2: 100})
    assert (counts.received, counts.unique, counts.duplicates, counts.missing) == (200, 200, 0, 0)


def test_gap_is_loss_until_the_late_message_arrives():
    tracker = SequenceTracker(LatencyHistogram())
    _feed(tracker, (1, 0), (1, 1), (1, 5), (1, 6))
    assert tracker.missing() == 3
    _feed(tracker, (1, 3))
    assert tracker.missing() == 2 and tracker.duplicates == 0
    _feed(tracker, (1, 2), (1, 4))
    assert tracker.missing() == 0 and tracker.duplicates == 0


def test_repeated_sequences_are_duplicates():
    tracker = SequenceTracker(LatencyHistogram())
    _feed(tracker, (1, 0), (1, 1), (1, 1), (1, 0), (1, 3), (1, 2), (1, 2))
    counts = tracker.counts()
    assert (counts.received, counts.duplicates, counts.unique, counts.missing) == (7, 3, 4, 0)


def test_lost_head_and_tail_are_counted_when_sent_is_known():
    tracker = SequenceTracker(LatencyHistogram())
    _feed(tracker, (7, 2), (7, 3))
    assert tracker.missing() == 2
    assert tracker.missing({7: 10}) == 8
    assert tracker.missing({7: 10, 8: 5}) == 13


# -- template and scanner -----------------------------------------------------------


def _client(version: int) -> tuple[MqttClient, list]:
    """A client wired to an in-memory transport that records what it writes."""
    written: list = []

    class Transport:
        def write(self, data):
            written.append(bytes(data))

        def is_closing(self):
            return False

        def pause_reading(self):
            pass

    client = MqttClient("t", Endpoint(version=version))
    client.transport = Transport()
    return client, written


def _run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_rendered_publishes_decode_to_the_patched_values(version, qos):
    template = PublishTemplate("bench/7", 64, qos, version)
    data = bytes(template.render(7, 65530, 10, 123456789))
    decoder = codec.StreamDecoder()
    decoder.version = version
    packets = decoder.feed(data)
    assert len(packets) == 10
    for offset, packet in enumerate(packets):
        seq = 65530 + offset
        assert (packet.topic_name, packet.qos, len(packet.payload)) == ("bench/7", qos, 64)
        assert packet.packet_id == (seq % 65535 + 1 if qos else None)
        assert HEADER.unpack_from(packet.payload) == (7, seq, 123456789)
        assert packet.payload[HEADER.size:] == bytes(64 - HEADER.size)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_scanner_finds_every_payload_whatever_the_chunks(version, qos):
    async def scenario():
        client, written = _client(version)
        tracker = SequenceTracker(LatencyHistogram())
        client.on_publish = tracker.observe
        stream = bytes(PublishTemplate("a/b", 300, qos, version).render(3, 0, 200, 0))
        rng = random.Random(qos * 10 + version)
        at = 0
        while at < len(stream):
            step = rng.choice([1, 2, 3, 150, 4096])
            client.data_received(stream[at:at + step])
            at += step
        return tracker, b"".join(written)

    tracker, replies = _run(scenario())
    assert tracker.counts({3: 200}).missing == 0 and tracker.received == 200
    assert tracker.duplicates == 0
    if qos == 0:
        assert replies == b""
    else:
        ack = codec.Puback if qos == 1 else codec.Pubrec
        assert replies == b"".join(codec.encode(ack(seq % 65535 + 1), version)
                                   for seq in range(200))


def test_scanner_counts_completions_and_answers_pubrec_with_pubrel():
    async def scenario():
        client, written = _client(5)
        completed = []
        client.on_complete = completed.append
        stream = b"".join(codec.encode(p, 5) for p in (
            codec.Puback(1), codec.Pubrec(2), codec.Puback(3, reason_code=0x10),
            codec.Pubcomp(2), codec.Pingresp()))
        client.data_received(stream[:5])
        client.data_received(stream[5:])
        return sum(completed), b"".join(written)

    completed, replies = _run(scenario())
    assert completed == 3
    assert replies == codec.encode(codec.Pubrel(2), 5)


def test_connack_and_suback_resolve_their_futures():
    async def scenario():
        client, _ = _client(5)
        client.data_received(codec.encode(codec.Connack(False, 0, {"receive_maximum": 20}), 5)
                             + codec.encode(codec.Suback(1, (1,)), 5))
        return client.connack.result(), client.suback.result()

    connack, suback = _run(scenario())
    assert connack.properties["receive_maximum"] == 20
    assert suback.reason_codes == (1,)


def test_summary_json_carries_the_derived_figures():
    summary = Summary(command="sub", clients=1, connected=1, version=4, received=2_000_000,
                      duplicates=3, elapsed_s=2.0, cpu_s=1.0)
    data = json.loads(summary.to_json())
    assert data["unique"] == 1_999_997
    assert data["cpu_s_per_million"] == 0.5 and data["cpu_percent"] == 50.0
    assert "received   2,000,000" in summary.to_text()


# -- end to end against Mosquitto ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mosquitto(tmp_path):
    if not os.path.exists(MOSQUITTO):
        pytest.skip(f"{MOSQUITTO} is not installed (Debian package 'mosquitto')")
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    f"max_queued_messages 100000\nuser {pwd.getpwuid(os.getuid()).pw_name}\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("mosquitto did not start")
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def _bench(*args: str) -> list[str]:
    return [sys.executable, "-m", "actormq", "bench", *args]


def test_pub_and_sub_against_mosquitto_qos1_lose_nothing(mosquitto, tmp_path):
    port = str(mosquitto)
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    sub = subprocess.Popen(_bench("sub", "-p", port, "-t", "e2e/#", "-q", "1", "-d", "20",
                                  "--idle", "1", "--ready-file", str(ready), "--json", "--quiet"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO_ROOT)
    deadline = time.monotonic() + 15
    while not ready.exists():
        assert sub.poll() is None and time.monotonic() < deadline, sub.communicate()
        time.sleep(0.05)
    pub = subprocess.run(_bench("pub", "-p", port, "-c", "2", "-t", "e2e/%i", "-q", "1",
                                "-r", "4000", "-d", "1.5", "--json"),
                         capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=30)
    assert pub.returncode == 0, pub.stderr
    out, err = sub.communicate(timeout=30)
    assert sub.returncode == 0, err
    sent, received = json.loads(pub.stdout), json.loads(out)
    assert "sent" in pub.stderr  # the live progress line
    assert sent["connected"] == 2
    assert 4500 <= sent["sent"] <= 6300  # -r 4000 for 1.5 s
    assert sent["completed"] == sent["sent"]
    assert received["received"] == sent["sent"]
    assert received["missing"] == 0 and received["duplicates"] == 0
    assert received["latency_us"]["p50"] > 0


def _stalling_server(listener: socket.socket, tls: ssl.SSLContext, stall: float, publishes: list) -> None:
    """One MQTT client over TLS: CONNACK, then nothing read for `stall` seconds (a
    broker holding a publisher back), then every PUBLISH counted up to the DISCONNECT."""
    conn, _ = listener.accept()
    decoder = StreamDecoder(max_packet_size=1 << 20)
    count = 0
    with tls.wrap_socket(conn, server_side=True) as conn:
        while decoder.version is None:          # the CONNECT
            decoder.feed(conn.recv(4096))
        conn.sendall(codec.encode(codec.Connack(False, 0), decoder.version))
        time.sleep(stall)
        while chunk := conn.recv(1 << 20):
            for packet in decoder.feed(chunk):
                if isinstance(packet, codec.Disconnect):
                    publishes.append(count)
                    return
                count += isinstance(packet, codec.Publish)
    publishes.append(count)


def test_pub_waits_for_what_it_wrote_to_leave_it_before_it_disconnects(tmp_path):
    # the server reads nothing for 5 s, past the 2 s the DISCONNECT waits: the
    # messages still in the client's buffers (TLS keeps more of them than the
    # socket) must go out first, not be dropped and counted as sent
    ca = CertificateAuthority(tmp_path)
    issued = ca.issue("server", "127.0.0.1", server=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(issued.cert, issued.key)
    listener = socket.create_server(("127.0.0.1", 0))
    publishes: list = []
    server = threading.Thread(target=_stalling_server, args=(listener, tls, 5.0, publishes), daemon=True)
    server.start()
    pub = subprocess.run(_bench("pub", "-p", str(listener.getsockname()[1]), "--cafile", str(ca.pem),
                                "-q", "0", "-s", "1024", "-L", "20000", "-d", "1", "--json", "--quiet"),
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    server.join(10)
    listener.close()
    assert pub.returncode == 0, pub.stderr
    sent = json.loads(pub.stdout)["sent"]
    assert publishes and publishes[0] == sent > 0, f"the client sent {sent}, the server read {publishes}"


def test_raw_connector_opens_holds_and_closes_connections(mosquitto):
    connector = RawConnector(Endpoint(port=mosquitto), (f"raw-{i}" for i in range(120)), 16)
    connector.run()
    try:
        assert connector.errors == [] and len(connector.opened) == 120
        assert connector.connect_ns.total == 120
        assert connector.last_connack_ns > connector.first_start_ns
    finally:
        connector.close()


def test_raw_connector_reports_refused_connections():
    connector = RawConnector(Endpoint(port=_free_port(), connect_timeout=2), ["a", "b"], 2)
    connector.run()
    assert connector.opened == [] and len(connector.errors) == 2
