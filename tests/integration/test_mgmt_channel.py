"""The control channel: every worker answers an admin command through the
management API, a stopped worker is reported as not answering in time (no
hang), credentials are checked, and the state file and secret are private."""

from __future__ import annotations

import os
import re
import signal
import stat
import time

import pytest

from tests.integration.brokers import actormq_only, run_cli
from tests.integration.mgmtapi import call, credentials, module_broker

pytestmark = pytest.mark.usefixtures("_actormq")


@pytest.fixture
def _actormq():
    actormq_only("the management API is actormq's")


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    yield from module_broker(tmp_path_factory, "channel", settings={"management.request_timeout_ms": 800})


def _worker_pids(broker) -> list[int]:
    """The workers' pids, from the banner (`workers: 2 (pids 11, 12)`)."""
    found = re.search(r"workers: \d+ \(pids ([\d, ]+)\)", broker.stdout())
    return sorted(int(pid) for pid in found.group(1).split(", "))


def test_every_worker_answers_with_node_and_worker_in_each_row(two_workers):
    status, body = call(two_workers, "POST", "/api/v4/admin/worker.ping", body={})
    assert status == 200 and body["code"] == 0
    assert [row["worker"] for row in body["data"]] == [0, 1]
    assert {row["node"] for row in body["data"]} == {"actormq@127.0.0.1"}
    assert sorted(row["pid"] for row in body["data"]) == _worker_pids(two_workers)
    assert "failed" not in body


def test_a_stopped_worker_is_reported_after_the_timeout_not_waited_for(two_workers):
    stopped = _worker_pids(two_workers)[0]
    os.kill(stopped, signal.SIGSTOP)
    try:
        started = time.monotonic()
        status, body = call(two_workers, "POST", "/api/v4/admin/worker.ping", body={})
        elapsed = time.monotonic() - started
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert status == 200
    assert [row["pid"] for row in body["data"]] == [p for p in _worker_pids(two_workers) if p != stopped]
    [failure] = body["failed"]
    assert failure["reason"] == "did not answer within 0.8 s"
    assert 0.7 < elapsed < 3.0
    # once it runs again it answers again (its late answer to the old request is dropped)
    status, body = call(two_workers, "POST", "/api/v4/admin/worker.ping", body={})
    assert len(body["data"]) == 2 and "failed" not in body


def test_unknown_command_is_a_bad_request(two_workers):
    status, body = call(two_workers, "POST", "/api/v4/admin/no.such.command", body={})
    assert status == 400
    assert body == {"code": 108, "message": "unknown admin command 'no.such.command'"}


def test_missing_or_wrong_credentials_get_401_with_the_emqx_body(two_workers):
    status, body = call(two_workers, "GET", "/api/v4", auth=None)
    assert status == 401 and body["code"] == 104
    user, _secret = credentials(two_workers)
    status, body = call(two_workers, "GET", "/api/v4", auth=(user, "not-the-secret"))
    assert status == 401 and body["code"] == 103
    status, body = call(two_workers, "GET", "/api/v4", auth=("intruder", _secret))
    assert status == 401 and body["code"] == 103


def test_secret_and_state_file_are_readable_by_the_broker_user_only(two_workers):
    for name in ("api_secret", "api.json"):
        mode = stat.S_IMODE((two_workers.data_dir / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    shown = run_cli("api-key", "show", "--format", "json", "--data-dir", str(two_workers.data_dir))
    assert shown.returncode == 0, shown.stderr
    import json
    assert json.loads(shown.stdout) == dict(zip(("id", "secret"), credentials(two_workers)))


def test_the_secret_is_generated_not_a_fixed_default(tmp_path):
    first = run_cli("api-key", "show", "--format", "json", "--data-dir", str(tmp_path / "a"))
    second = run_cli("api-key", "show", "--format", "json", "--data-dir", str(tmp_path / "b"))
    again = run_cli("api-key", "show", "--format", "json", "--data-dir", str(tmp_path / "a"))
    assert first.stdout == again.stdout
    assert first.stdout != second.stdout
    assert "public" not in first.stdout


def test_api_port_in_use_stops_the_start_with_one_line(tmp_path):
    import socket
    import subprocess
    import sys

    from tests.integration.brokers import REPO_ROOT
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "actormq", "run", "-w", "1", "--port", "0", "--host", "127.0.0.1",
             "--data-dir", str(tmp_path / "data"), "--set", f"management.listener.http=127.0.0.1:{port}"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"management API cannot listen on 127.0.0.1:{port} (management.listener.http)" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Task was destroyed" not in result.stderr


def test_api_off_and_the_cli_says_so(make_broker):
    broker = make_broker(settings={"management.listener.http": "0"})
    assert "management api:" not in broker.stdout()
    result = run_cli("node", "status", "--data-dir", str(broker.data_dir))
    assert result.returncode == 1
    assert "has no management API (management.listener.http = 0)" in result.stderr


def test_metrics_auth_on_asks_for_the_secret(make_broker):
    broker = make_broker(settings={"management.metrics.auth": "on"})
    status, body = call(broker, "GET", "/metrics", auth=None)
    assert status == 401 and body["code"] == 104
    status, text = call(broker, "GET", "/metrics", raw=True)
    assert status == 200 and "actormq_connections_current" in text
    assert call(broker, "GET", "/health", auth=None)[0] == 200      # health never asks


def test_a_killed_worker_is_down_then_answers_again_after_its_restart(two_workers):
    killed = _worker_pids(two_workers)[1]
    os.kill(killed, signal.SIGKILL)
    reasons = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, body = call(two_workers, "POST", "/api/v4/admin/worker.ping", body={})
        reasons |= {f["reason"] for f in body.get("failed", [])}
        pids = {row["worker"]: row["pid"] for row in body["data"]}
        if len(pids) == 2 and killed not in pids.values():
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"worker 1 never answered again: {body}")
    assert reasons <= {"down", "not connected to the control channel", "did not answer within 0.8 s"}
