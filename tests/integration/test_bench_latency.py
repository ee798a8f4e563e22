"""`actormq bench latency` against a real broker: the publisher and subscriber
processes connect, every QoS 1 message arrives once (the delivery check) and
the percentiles are present and ordered; across two workers (`--sub-port`)
the same, and `--series` lists every message's send and receive time."""

from __future__ import annotations

import csv
import json

import pytest

from tests.integration.brokers import actormq_only, run_cli
from tests.integration.hookplugins import worker_ports

pytestmark = pytest.mark.timeout(60)

RATE, DURATION = 500, 1.0


def _latency(*args: str) -> dict:
    done = run_cli("bench", "latency", "-r", str(RATE), "-d", str(DURATION), "--grace", "3",
                   "--json", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _check(summary: dict, qos: int) -> None:
    expected = int(RATE * DURATION)
    assert summary["errors"] == [] and summary["connected"] == 2, summary
    assert summary["sent"] == expected and summary["qos"] == qos
    assert summary["completed"] == (expected if qos else 0)
    assert (summary["received"], summary["duplicates"], summary["missing"]) == (expected, 0, 0)
    lat = summary["latency_us"]
    ordered = [lat["p50"], lat["p90"], lat["p99"], lat["p99.9"], lat["max"]]
    assert 0 < ordered[0] and ordered == sorted(ordered), lat
    assert ordered[0] < 1_000_000       # a round trip on loopback, not a lost second


@pytest.mark.parametrize("qos", [1, 2])
def test_latency_probe_against_one_worker(make_broker, qos):
    broker = make_broker()
    _check(_latency("-p", str(broker.port), "-q", str(qos), "-V", "5"), qos)


def test_latency_probe_across_two_workers(make_broker, tmp_path):
    actormq_only("one port per worker")
    broker = make_broker(settings={"listener.tcp.worker_ports": "true"}, workers=2)
    sub_port, pub_port = worker_ports(broker, 2)
    series = tmp_path / "series.csv"
    _check(_latency("-p", str(pub_port), "--sub-port", str(sub_port), "--series", str(series)), 1)
    with open(series) as rows:
        messages = [(int(row["seq"]), int(row["send_ns"]), int(row["recv_ns"]))
                    for row in csv.DictReader(rows)]
    assert sorted(seq for seq, _, _ in messages) == list(range(int(RATE * DURATION)))
    assert all(sent < received for _, sent, received in messages)


def test_latency_probe_reports_a_broker_that_is_not_there():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_cli("bench", "latency", "-p", str(port), "-d", "0.1", "--json")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["connected"] == 0 and "subscriber" in summary["errors"][0]
