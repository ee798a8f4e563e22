"""A broker killed with kill -9 (node and workers) leaves its run dir behind;
the next broker to start removes it."""

from __future__ import annotations

import pytest

from tests.integration.brokers import actormq_only, start_broker

pytestmark = pytest.mark.timeout(60)


def run_dirs(tmp):
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("actormq-run-"))


def test_the_next_start_removes_the_run_dir_of_a_killed_broker(tmp_path, monkeypatch):
    actormq_only("the node's run dir")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    broker = start_broker(tmp_path, workers=2)
    left = run_dirs(tmp)
    assert len(left) == 1
    broker.kill9()
    assert run_dirs(tmp) == left, "a killed broker removed its run dir: nothing to test"
    broker.start()
    try:
        now = run_dirs(tmp)
        assert left[0] not in now and len(now) == 1
        assert "removed 1 temporary directory left by brokers that were killed" in broker.log()
    finally:
        broker.stop()
    assert run_dirs(tmp) == []
