"""Operating the broker: SIGHUP reloads the config, the run dir goes on every
exit, the connection log, and readable process titles."""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import psutil
import pytest

from actormq.transport.codec import Publish
from tests.integration.brokers import actormq_only
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient
from tests.integration.test_one_broker import run_second

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _actormq_only():
    actormq_only("actormq's logs, signals and processes")


def wait_for_log(broker, pattern: str, since: int = 0, timeout: float = 5.0) -> re.Match:
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(pattern, broker.log()[since:])
        if found:
            return found
        assert time.monotonic() < deadline, f"no log line matches {pattern!r}:\n{broker.log()[since:]}"
        time.sleep(0.05)


# -- SIGHUP --------------------------------------------------------------------------

def test_sighup_reloads_log_level_and_limits_and_names_what_needs_a_restart(make_broker, tmp_path):
    conf = tmp_path / "actormq.conf"
    conf.write_text("log.level = warning\nmqtt.max_packet_size = 1MB\n")
    broker = make_broker("-c", str(conf))
    quiet_id = unique("before")
    connect(broker.port, quiet_id).disconnect()
    conf.write_text("log.level = info\nmqtt.max_packet_size = 2KB\nlistener.tcp.backlog = 77\n")
    since = len(broker.log())
    os.kill(broker.proc.pid, signal.SIGHUP)
    wait_for_log(broker, r"config reloaded: log\.level, mqtt\.max_packet_size\n", since)
    wait_for_log(broker, r"config key listener\.tcp\.backlog changed: needs a restart", since)
    raw = RawClient(broker.port, version=4)
    loud_id = unique("after")
    raw.connect(loud_id)
    wait_for_log(broker, rf"INFO .*client {loud_id} connected from", since)
    raw.send(Publish(unique("big"), b"x" * 3000))
    assert raw.expect_closed() == []                 # over the new 2 KB limit
    wait_for_log(broker, rf"client {loud_id} .*0x95", since)
    assert quiet_id not in broker.log()              # logged nothing at warning
    assert broker.running


def test_sighup_with_a_bad_file_keeps_the_running_config(make_broker, tmp_path):
    conf = tmp_path / "actormq.conf"
    conf.write_text("mqtt.max_packet_size = 1MB\n")
    broker = make_broker("-c", str(conf))
    conf.write_text("mqtt.max_packet_size = lots\n")
    os.kill(broker.proc.pid, signal.SIGHUP)
    wait_for_log(broker, r"config not reloaded, the running one stays: .*mqtt\.max_packet_size")
    client = connect(broker.port, unique("alive"))
    topic = unique("alive")
    client.subscribe(topic, 1)
    client.publish(topic, b"y" * 5000, qos=1)
    assert client.expect_one().payload == b"y" * 5000


# -- the run dir -------------------------------------------------------------------------

def run_dirs(tmp_dir) -> list:
    return sorted(p.name for p in tmp_dir.iterdir() if p.name.startswith("actormq-run-"))


def test_run_dir_removed_after_a_failed_start(tmp_path, monkeypatch):
    runtime = tmp_path / "tmp"
    runtime.mkdir()
    monkeypatch.setenv("TMPDIR", str(runtime))
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        result = run_second("-w", "2", "--port", str(other.getsockname()[1]),
                            "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2
    assert run_dirs(runtime) == []


def test_run_dir_removed_after_a_start_that_fails_on_the_data_dir(tmp_path, monkeypatch):
    runtime = tmp_path / "tmp"
    runtime.mkdir()
    monkeypatch.setenv("TMPDIR", str(runtime))
    (tmp_path / "d").write_text("a file, not a directory")
    result = run_second("-w", "2", "--port", "0", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert run_dirs(runtime) == []


def test_run_dir_removed_when_the_node_is_killed(make_broker, tmp_path, monkeypatch):
    runtime = tmp_path / "tmp"
    runtime.mkdir()
    monkeypatch.setenv("TMPDIR", str(runtime))
    broker = make_broker(workers=2)
    assert len(run_dirs(runtime)) == 1
    workers = psutil.Process(broker.proc.pid).children()
    broker.proc.kill()
    broker.proc.wait()
    psutil.wait_procs(workers, timeout=10)
    assert run_dirs(runtime) == []


# -- the connection log ------------------------------------------------------------------

def test_connect_and_disconnect_are_logged_at_info(broker):
    client_id = unique("logged")
    since = len(broker.log())
    client = connect(broker.port, client_id, clean_start=False, version=4)
    peer = wait_for_log(broker, rf"INFO .*client {client_id} connected from (127\.0\.0\.1:\d+): "
                                rf"MQTT v4, clean start 0, persistent session, session present 0, "
                                rf"keepalive \d+\n", since).group(1)
    client.disconnect()
    wait_for_log(broker, rf"client {client_id} \({peer}\) disconnected: normal disconnect", since)
    again = RawClient(broker.port, version=4)
    again.connect(client_id, clean_start=False)
    wait_for_log(broker, rf"client {client_id} connected from .*persistent session, "
                         rf"session present 1", since)
    again.close()
    wait_for_log(broker, rf"client {client_id} \(.*\) disconnected: closed by client", since)


def test_log_connections_off_silences_them(make_broker):
    broker = make_broker(settings={"log.connections": "off"})
    client_id = unique("silent")
    connect(broker.port, client_id).disconnect()
    marker = RawClient(broker.port, version=4)
    marker.connect(unique("marker"))
    marker.send_bytes(b"\xd0\x00")           # a PINGRESP: a protocol error, logged
    marker.expect_closed()
    wait_for_log(broker, r"PINGRESP is sent by servers only")
    assert client_id not in broker.log()


# -- process titles ------------------------------------------------------------------------

def test_process_titles(make_broker):
    pytest.importorskip("setproctitle")
    broker = make_broker(workers=2)
    node = psutil.Process(broker.proc.pid)
    assert " ".join(node.cmdline()).strip() == "actormq: node"
    titles = sorted(" ".join(child.cmdline()).strip() for child in node.children())
    assert [t for t in titles if t.startswith("actormq:")] == ["actormq: worker 0", "actormq: worker 1"]
