"""One broker per port and per data dir.

Only the node's own workers share a listening port: a second `actormq run`
on the port exits 2 with "cannot listen on H:P: address already in use" and
the first keeps every client; a second one on the data dir exits 2 with "data
dir D is in use by pid N"; the lock goes with the holder, kill -9 included.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.integration.brokers import HOST, REPO_ROOT, actormq_only
from tests.integration.clients import connect, unique

pytestmark = pytest.mark.timeout(90)


def run_second(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """`actormq run ARGS` expected to stop at once."""
    cmd = [sys.executable, "-m", "actormq", "run", "--host", HOST, "--set", "sys_interval=0", *args]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _actormq_only():
    actormq_only("actormq's own start-up checks")


def test_second_broker_on_the_same_port_exits_2_and_the_first_keeps_every_client(
        make_broker, tmp_path):
    first = make_broker(workers=2)
    second = run_second("-w", "2", "--port", str(first.port), "--data-dir", str(tmp_path / "other"))
    assert second.returncode == 2, second.stderr
    assert f"cannot listen on {HOST}:{first.port}: address already in use" in second.stderr
    assert "Traceback" not in second.stderr
    topic = unique("one/broker")
    subscriber = connect(first.port, unique("sub"))
    subscriber.subscribe(topic, 1)
    publishers = [connect(first.port, unique("pub")) for _ in range(10)]
    for index, publisher in enumerate(publishers):
        publisher.publish(topic, f"m{index}".encode(), qos=1)
    received = sorted(message.payload for message in subscriber.expect(10))
    assert received == sorted(f"m{index}".encode() for index in range(10))


def test_port_taken_by_another_program_exits_2(tmp_path):
    with socket.socket() as other:
        other.bind((HOST, 0))
        other.listen()
        port = other.getsockname()[1]
        result = run_second("-w", "1", "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2
    assert f"cannot listen on {HOST}:{port}: address already in use" in result.stderr


def test_second_broker_on_the_same_data_dir_exits_2(make_broker):
    first = make_broker()
    second = run_second("-w", "1", "--port", "0", "--data-dir", str(first.data_dir))
    assert second.returncode == 2, second.stderr
    assert f"data dir {first.data_dir} is in use by pid {first.proc.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    client = connect(first.port, unique("still"))
    topic = unique("still")
    client.subscribe(topic, 1)
    client.publish(topic, b"served", qos=1)
    assert client.expect_one().payload == b"served"


def test_data_dir_lock_goes_with_a_killed_broker(make_broker):
    first = make_broker()
    first.kill9()
    again = first.start()           # the same data dir, at once
    client = connect(again.port, unique("after"))
    assert not client.closed.is_set()
