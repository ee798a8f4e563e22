"""`actormq.sched_slice`: the slice a thread asks of the fair scheduler, read
back from the kernel (sched_getattr and /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from actormq import sched_slice


def proc_slice_ns(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/sched") as sched:
        for line in sched:
            if line.startswith("se.slice"):
                return int(line.split(":")[1])
    raise AssertionError("no se.slice in /proc (kernel without EEVDF)")


def custom_slices_work() -> bool:
    """Linux 6.12+ (EEVDF with per-task slices) and a fair policy here."""
    if os.sched_getscheduler(0) not in sched_slice.FAIR_POLICIES:
        return False
    try:
        with open("/proc/self/sched") as sched:
            return "se.slice" in sched.read() and sched_slice.get_attr().sched_runtime > 0
    except OSError:
        return False


needs_custom_slices = pytest.mark.skipif(not custom_slices_work(),
                                         reason="needs Linux 6.12+ and a fair scheduling policy")


def in_thread(call):
    """call() on a fresh thread: (its result, the thread's id)."""
    result = {}

    def run():
        result["value"] = call()
        result["tid"] = threading.get_native_id()
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result["value"], result["tid"]


@needs_custom_slices
def test_a_thread_gets_the_slice_it_asks_for_and_the_others_keep_theirs():
    default = proc_slice_ns(threading.get_native_id())

    def ask():
        reason = sched_slice.set_slice(250)
        return reason, sched_slice.get_attr().sched_runtime, proc_slice_ns(threading.get_native_id()), \
            sched_slice.set_slice(0), proc_slice_ns(threading.get_native_id())
    (reason, runtime, proc_value, reset_reason, reset_value), _ = in_thread(ask)
    assert reason is None
    assert runtime == 250_000
    assert proc_value == 250_000
    assert reset_reason is None and reset_value == default
    assert proc_slice_ns(threading.get_native_id()) == default


@needs_custom_slices
def test_the_kernel_clamps_a_slice_below_its_minimum():
    def ask():
        return sched_slice.set_slice(20), proc_slice_ns(threading.get_native_id())
    (reason, value), _ = in_thread(ask)
    assert reason is None
    assert value == sched_slice.MIN_SLICE_US * 1000


def test_a_real_time_thread_keeps_its_policy():
    code = ("import os; from actormq import sched_slice; "
            "print(sched_slice.set_slice(300)); print(os.sched_getscheduler(0))")
    try:
        done = subprocess.run(["chrt", "-f", "1", sys.executable, "-c", code], capture_output=True,
                              text=True, timeout=30, cwd=Path(__file__).resolve().parents[2])
    except FileNotFoundError:
        pytest.skip("no chrt")
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("no permission for a real-time policy here")
    reason, policy = done.stdout.splitlines()
    assert reason == "the thread runs under real-time policy 1"
    assert int(policy) == os.SCHED_FIFO


def test_zero_leaves_the_thread_alone(caplog):
    before = sched_slice.get_attr().sched_runtime if custom_slices_work() else None
    sched_slice.apply_worker_slice(0)
    assert not caplog.records
    if before is not None:
        assert sched_slice.get_attr().sched_runtime == before
