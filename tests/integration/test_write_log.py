"""The write-ahead log (storage.log = on) across kill -9: messages acknowledged
right before the broker, or one of its workers, is killed are in the log only,
and arrive after the restart (the node replays the log) or from the survivor
that takes over the dead worker's sessions (it replays the dead worker's log
first); with storage.log = off every commit goes to LMDB as before."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.brokers import actormq_only
from tests.integration.clients import connect, unique
from tests.integration.test_persistence import PERSISTENT, go_offline, kill9_all, publish_numbers
from tests.integration.test_workers import WORKER_LINE

pytestmark = pytest.mark.timeout(120)
COUNT = 300


def disc(sync: str, log: str = "on") -> dict:
    return {"queue.storage": "disc", "retained.storage": "disc", "storage.sync": sync, "storage.log": log}


def log_files(broker) -> list[str]:
    directory = broker.data_dir / "actormq.wal"
    return sorted(name for name in os.listdir(directory) if name.endswith(".log")) if directory.exists() else []


def received_numbers(port: int, client_id: str, count: int) -> list[int]:
    client = connect(port, client_id, clean_start=False, properties=PERSISTENT)
    assert client.connack.session_present, "the persistent session did not survive"
    got = [int(m.payload) for m in client.expect(count, timeout=30)]
    client.expect_none(0.3)
    return got


@pytest.mark.parametrize("sync, log", [("off", "on"), ("on", "on"), ("off", "off")])
def test_messages_acknowledged_right_before_a_kill9_arrive_after_the_restart(make_broker, sync, log):
    actormq_only("the write-ahead log is actormq's")
    broker = make_broker(settings=disc(sync, log))
    client_id, topic = unique("logged"), unique("q")
    go_offline(broker.port, client_id, topic)
    publish_numbers(broker.port, topic, COUNT, in_flight=100)
    kill9_all(broker)
    dead = log_files(broker)
    assert bool(dead) == (log == "on"), "a killed broker leaves its log for the next start"
    broker.restart()
    assert received_numbers(broker.port, client_id, COUNT) == list(range(COUNT))
    assert not set(dead) & set(log_files(broker)), "the dead log was replayed and removed"


@pytest.mark.slow
@pytest.mark.parametrize("sync", ["off", "on"])
def test_a_survivor_takes_over_a_killed_workers_session_with_its_logged_messages(make_broker, sync):
    actormq_only("actormq worker processes")
    broker = make_broker(settings={"listener.tcp.worker_ports": "true", **disc(sync)}, workers=2)
    deadline = time.monotonic() + 5
    while len(found := sorted(WORKER_LINE.findall(broker.stdout()))) < 2:
        assert time.monotonic() < deadline, broker.stdout()
        time.sleep(0.02)
    ports = [int(port) for _, _, port, _ in found]
    pids = [int(pid) for *_, pid in found]
    client_id, topic = unique("logged"), unique("q")
    go_offline(ports[1], client_id, topic)
    publish_numbers(ports[1], topic, COUNT, in_flight=100)
    os.kill(pids[1], signal.SIGKILL)
    # the node restarts the worker beside a live peer, which takes over its sessions
    deadline = time.monotonic() + 10
    while "took over 1 persistent sessions" not in broker.log():
        assert time.monotonic() < deadline, broker.log()
        time.sleep(0.05)
    assert received_numbers(ports[0], client_id, COUNT) == list(range(COUNT))
