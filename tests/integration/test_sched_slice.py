"""`worker.sched_slice_us`: every worker process of a node (`-w 2`) and the
worker that runs in the node's own process (`-w 1`) ask the kernel for the
configured slice, read back from /proc; the node's own thread keeps the
kernel's default, and messages flow across the workers. A
reload (SIGHUP) with a new value applies it, and 0 gives the kernel's back."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.integration.test_workers import numbers, routed
from tests.integration.test_workers_core import start_node
from tests.unit.test_sched_slice import needs_custom_slices, proc_slice_ns

pytestmark = [pytest.mark.timeout(60), needs_custom_slices]


def slice_ns(pid: int, tid: int | None = None) -> int:
    with open(f"/proc/{pid}/task/{tid or pid}/sched") as sched:
        for line in sched:
            if line.startswith("se.slice"):
                return int(line.split(":")[1])
    raise AssertionError(f"no se.slice for {pid}")


def test_each_worker_process_takes_the_configured_slice(tmp_path):
    node = start_node(tmp_path, **{"worker.sched_slice_us": 250})
    try:
        workers = psutil.Process(node.broker.proc.pid).children()
        assert len(workers) == 2
        for worker in workers:
            assert slice_ns(worker.pid) == 250_000, worker.cmdline()
        default = proc_slice_ns(os.getpid())
        assert slice_ns(node.broker.proc.pid) == default, "the node is not a worker"
        subscriber_side, publisher_side = node.ports
        topic = unique("slice")
        subscriber = connect(subscriber_side, unique("sub"))
        subscriber.subscribe(topic, 1)
        publisher = connect(publisher_side, unique("pub"))
        routed(publisher, topic, subscriber)
        for number in range(5):
            publisher.publish(topic, str(number).encode(), qos=1)
        assert numbers(subscriber) == list(range(5))
    finally:
        node.broker.stop()


@pytest.mark.parametrize("configured, expected_us", [(300, 300), (None, None), (0, None)])
def test_the_in_process_worker_takes_its_slice_and_the_default_leaves_the_kernels(
        tmp_path, configured, expected_us):
    actormq_only("actormq worker scheduling")
    settings = {} if configured is None else {"worker.sched_slice_us": configured}
    broker = start_broker(tmp_path, settings=settings)
    try:
        expected = proc_slice_ns(os.getpid()) if expected_us is None else expected_us * 1000
        assert slice_ns(broker.proc.pid) == expected
        client = connect(broker.port, unique("c"))
        client.disconnect()
    finally:
        broker.stop()


def test_a_bad_value_is_refused_with_the_key_named(tmp_path):
    from tests.integration.brokers import run_cli
    done = run_cli("run", "--port", "0", "--data-dir", str(tmp_path), "--set",
                   "worker.sched_slice_us=-5", timeout=20)
    assert done.returncode != 0
    assert "worker.sched_slice_us" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def wait_for_slice(pid: int, expected: int) -> None:
    deadline = time.monotonic() + 10
    while (found := slice_ns(pid)) != expected:
        assert time.monotonic() < deadline, f"slice of {pid} stayed {found}, expected {expected}"
        time.sleep(0.05)


@pytest.mark.parametrize("worker_count", [1, 2])
def test_a_reload_applies_a_new_slice_and_zero_gives_the_kernels_back(tmp_path, worker_count):
    conf = tmp_path / "actormq.conf"
    conf.write_text("worker.sched_slice_us = 250\n")
    actormq_only("actormq worker scheduling")
    broker = start_broker(tmp_path, "-c", str(conf), workers=worker_count)
    try:
        workers = psutil.Process(broker.proc.pid).children() if worker_count > 1 else \
            [psutil.Process(broker.proc.pid)]
        assert len(workers) == worker_count
        for worker in workers:
            assert slice_ns(worker.pid) == 250_000
        conf.write_text("worker.sched_slice_us = 800\n")
        broker.proc.send_signal(signal.SIGHUP)
        for worker in workers:
            wait_for_slice(worker.pid, 800_000)
        conf.write_text("worker.sched_slice_us = 0\n")
        broker.proc.send_signal(signal.SIGHUP)
        for worker in workers:
            wait_for_slice(worker.pid, proc_slice_ns(os.getpid()))
    finally:
        broker.stop()
