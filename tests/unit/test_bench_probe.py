"""The pure parts of `actormq bench latency` (actormq.bench.probe): the send
schedule, the in-place stamp of the pre-encoded PUBLISH, the shared inbound
scanner, the read timeout of a blocking socket and the summary of the two
processes' results, and the series of every message's times."""

from __future__ import annotations

import array
import csv
import socket
import time

from hypothesis import given
from hypothesis import strategies as st

from actormq.bench.client import AckHeaders, PublishTemplate, scan
from actormq.bench.probe import (Probe, _summary, due_ns, note_series, receive_timeout,
                                 write_series)
from actormq.bench.client import Endpoint
from actormq.bench.stats import HEADER, LatencyHistogram
from actormq.transport import codec


@given(st.integers(0, 2**62), st.integers(0, 10**6), st.integers(1, 10**9))
def test_the_schedule_is_fixed_from_the_start(start, seq, interval):
    assert due_ns(start, seq, interval) - start == seq * interval
    assert due_ns(start, seq + 1, interval) - due_ns(start, seq, interval) == interval


def test_rate_and_duration_give_interval_and_count():
    probe = Probe(rate=2000.0, duration=5.0)
    assert probe.interval_ns() == 500_000 and probe.messages() == 10_000
    assert Probe(rate=10, duration=0.01).messages() == 1


@given(version=st.sampled_from([4, 5]), qos=st.integers(0, 2),
       seqs=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=5),
       now=st.integers(0, 2**64 - 1))
def test_a_stamped_blank_decodes_to_the_stamped_values(version, qos, seqs, now):
    template = PublishTemplate("latency/1", 64, qos, version)
    packet = template.blank()
    for seq in seqs:        # stamping the same buffer again overwrites every field
        template.stamp(packet, 3, seq, now)
    decoder = codec.StreamDecoder()
    decoder.version = version
    (decoded,) = decoder.feed(bytes(packet))
    assert decoded.packet_id == (seqs[-1] % 65535 + 1 if qos else None)
    assert HEADER.unpack_from(decoded.payload) == (3, seqs[-1], now)
    assert bytes(template.blank()) == bytes(template.data)


@given(reads=st.lists(st.tuples(st.lists(st.tuples(st.integers(0, 2**32 - 1),
                                                      st.integers(0, 2**64 - 1)), max_size=4),
                                 st.integers(0, 2**64 - 1)), max_size=5))
def test_the_series_has_every_message_of_every_read_in_order(tmp_path_factory, reads):
    series = array.array("Q")
    expected = []
    for messages, now in reads:
        buf = b"".join(HEADER.pack(1, seq, sent) + b"\0" * 8 for seq, sent in messages)
        note_series(series, buf, [24 * i for i in range(len(messages))], now)
        expected += [{"seq": str(seq), "send_ns": str(sent), "recv_ns": str(now)}
                     for seq, sent in messages]
    path = tmp_path_factory.mktemp("series") / "series.csv"
    write_series(str(path), series)
    with open(path) as rows:
        assert list(csv.DictReader(rows)) == expected


def test_scan_splits_publishes_acknowledgements_and_control_packets():
    version = 5
    publish = bytes(PublishTemplate("a", 40, 1, version).render(1, 0, 2, 7))
    stream = (codec.encode(codec.Connack(False, 0, {}), version) + publish
              + codec.encode(codec.Puback(9), version) + codec.encode(codec.Pubrel(4), version))
    offsets, replies, controls = [], bytearray(), []
    consumed, completed = scan(stream + b"\x30", True, AckHeaders.for_version(version),
                               offsets, replies, controls)
    assert consumed == len(stream) and completed == 1
    assert [HEADER.unpack_from(stream, at) for at in offsets] == [(1, 0, 7), (1, 1, 7)]
    assert bytes(replies) == (codec.encode(codec.Puback(1), version)
                              + codec.encode(codec.Puback(2), version)
                              + codec.encode(codec.Pubcomp(4), version))
    assert [first >> 4 for first, _ in controls] == [2]


def test_a_blocking_read_gives_up_after_the_receive_timeout():
    left, right = socket.socketpair()
    with left, right:
        receive_timeout(left, 0.05)
        started = time.monotonic()
        try:
            left.recv(10)
        except BlockingIOError:
            pass
        else:
            raise AssertionError("recv returned without data")
        assert 0.04 <= time.monotonic() - started < 1.0
        right.send(b"x")
        assert left.recv(10) == b"x"


def test_summary_of_the_two_processes():
    histogram = LatencyHistogram()
    for value in (90_000, 100_000, 2_000_000):
        histogram.record(value)
    summary = _summary(Endpoint(), Probe(), {"sent": 3, "completed": 3, "cpu_s": 0.25},
                       {"received": 3, "duplicates": 0, "missing": 0, "counts": histogram.counts,
                        "cpu_s": 0.5, "first_ns": 10**9, "last_ns": 3 * 10**9}, [])
    assert (summary.command, summary.connected, summary.sent, summary.received) == \
        ("latency", 2, 3, 3)
    assert summary.rate == 1.5 and summary.cpu_s == 0.75
    assert 1990 <= summary.latency_us["max"] <= 2010
    text = summary.to_text()
    assert "sent       3, completed 3" in text and "loss       0" in text


def test_summary_of_a_subscriber_that_never_reported():
    summary = _summary(Endpoint(), Probe(), {}, {},
                       ["subscriber: refused"])
    assert summary.connected == 0 and summary.latency_us is None
    assert summary.errors == ["subscriber: refused"]
