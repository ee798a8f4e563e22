"""A worker's time slice under the kernel's fair scheduler (`worker.sched_slice_us`).

Linux 6.12 and later (EEVDF) let a SCHED_OTHER thread ask for its own slice
with `sched_setattr(sched_runtime)`, between 0.1 and 100 ms and without
privilege. A shorter slice gives the thread an earlier deadline when it
wakes, so it takes a core from a busy thread sooner: a worker woken by a
client's packet runs before the batch work around it has used up its slice.
The slice of the calling thread is set (the worker's event loop; threads
it starts later, and processes, inherit it). A thread under a real-time policy
(`chrt -f`) keeps it: its slice means nothing there, and setting the
SCHED_OTHER slice would take the real-time policy away. Python's `os` has
no binding for sched_setattr: the system call goes through ctypes. Older
kernels take the call and ignore the slice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import sys

log = logging.getLogger("actormq.worker")

SCHED_OTHER = 0
SCHED_BATCH = 3
FAIR_POLICIES = (SCHED_OTHER, SCHED_BATCH)
REAL_TIME = "the thread runs under real-time policy"
MIN_SLICE_US = 100          # the kernel clamps a custom slice to 0.1..100 ms
# sched_setattr, sched_getattr: the same numbers on x86_64 and the arm64/riscv table
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275), "arm64": (274, 275), "riscv64": (274, 275)}


class SchedAttr(ctypes.Structure):
    """struct sched_attr, version 0 (48 bytes)."""

    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32),
                ("sched_flags", ctypes.c_uint64), ("sched_nice", ctypes.c_int32),
                ("sched_priority", ctypes.c_uint32), ("sched_runtime", ctypes.c_uint64),
                ("sched_deadline", ctypes.c_uint64), ("sched_period", ctypes.c_uint64)]


def _libc():
    # syscall() is variadic: its arguments go as longs (c_long), not as C ints
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _numbers() -> tuple[int, int] | None:
    if not sys.platform.startswith("linux"):
        return None
    return _SYSCALLS.get(platform.machine())


def get_attr(tid: int = 0) -> SchedAttr:
    """The scheduling attributes of a thread (0: the calling one)."""
    numbers = _numbers()
    if numbers is None:
        raise OSError(f"sched_getattr: unknown on {sys.platform} {platform.machine()}")
    attr = SchedAttr()
    if _libc().syscall(ctypes.c_long(numbers[1]), ctypes.c_long(tid), ctypes.byref(attr),
                       ctypes.c_long(ctypes.sizeof(attr)), ctypes.c_long(0)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"sched_getattr: {os.strerror(errno)}")
    return attr


def set_slice(slice_us: int) -> str | None:
    """Ask for a slice of `slice_us` µs for the calling thread (0: the kernel's
    default). Returns why it was not set, or None once it is."""
    numbers = _numbers()
    if numbers is None:
        return f"not on {sys.platform} {platform.machine()}"
    try:
        attr = get_attr()
    except OSError as exc:
        return str(exc)
    if attr.sched_policy not in FAIR_POLICIES:
        return f"{REAL_TIME} {attr.sched_policy}"
    attr.size = ctypes.sizeof(attr)
    attr.sched_flags = 0
    attr.sched_runtime = slice_us * 1000
    if _libc().syscall(ctypes.c_long(numbers[0]), ctypes.c_long(0), ctypes.byref(attr),
                       ctypes.c_long(0)) != 0:
        errno = ctypes.get_errno()
        return f"sched_setattr: {os.strerror(errno)} (Linux 6.12 or later takes a slice)"
    return None


def apply_worker_slice(slice_us: int, at_start: bool = True) -> None:
    """Set the configured slice on the worker's thread; one log line if it cannot
    (at debug when the worker runs under a real-time policy: chrt chose for it).
    0 at the start leaves the thread alone; on a reload it gives the thread
    the kernel's default back."""
    if not slice_us and at_start:
        return
    reason = set_slice(slice_us)
    if reason is not None:     # under chrt the setting means nothing: not worth a line at info
        log.log(logging.DEBUG if reason.startswith(REAL_TIME) else logging.INFO,
                "worker.sched_slice_us = %d not applied: %s", slice_us, reason)


def reload_worker_slice(config) -> None:
    """A reload (SIGHUP) that changed `worker.sched_slice_us`."""
    apply_worker_slice(config["worker.sched_slice_us"], at_start=False)
