"""With the write-ahead log and storage.sync = on the loop appends its turns'
records to the log and the writer thread flushes them: a write's durability
callback runs only after a flush that began once its record was in the log,
the records appended while a flush runs wait for the next one, and a batch
with a retained row (not logged) is committed by the writer with its flush."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from actormq.storage import log as write_log
from actormq.storage.base import QUEUE, RETAINED
from actormq.storage.checkpoint import AHEAD, CHECKPOINT_BYTES
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.records import queue_key
from tests.unit.test_write_log_store import loop, run_until  # noqa: F401 (loop: a fixture)


def keys_in(data: bytes) -> set[bytes]:
    return {key for _, body in write_log.read_records(data) for _, key, _ in write_log.decode_body(body)}


def logged_keys(path) -> set[bytes]:
    directory = path / write_log.LOG_DIR
    (name,) = [name for name in os.listdir(directory) if name.endswith(write_log.SUFFIX)]
    return keys_in((directory / name).read_bytes())


class GatedFlushes:
    """os.fdatasync of the log held until the test lets one through (LMDB's
    own flushes pass); what the log held when each flush let through began."""

    def __init__(self, monkeypatch) -> None:
        self._flush = os.fdatasync
        self._gate = threading.Semaphore(0)
        self.started = 0
        self.covered: list[set[bytes]] = []     # per completed flush: the keys its records hold
        monkeypatch.setattr(write_log.os, "fdatasync", self._gated)

    def _gated(self, fd: int) -> None:
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(write_log.SUFFIX):
            self._flush(fd)     # LMDB's (its preallocated data file)
            return
        data = os.pread(fd, 1 << 20, 0)
        self.started += 1
        self._gate.acquire()
        self._flush(fd)
        self.covered.append(keys_in(data))

    def let_one_through(self) -> None:
        self._gate.release()


def in_loop(loop, write) -> None:
    """Run `write` inside the running loop (whose turns then append), then a few turns."""
    async def run() -> None:
        write()
        for _ in range(5):
            await asyncio.sleep(0.001)
    loop.run_until_complete(run())


def turns(loop, count: int = 20) -> None:
    async def run() -> None:
        for _ in range(count):
            await asyncio.sleep(0.001)
    loop.run_until_complete(run())


@pytest.fixture
def gated_store(tmp_path, loop, monkeypatch):
    store = LmdbStore(str(tmp_path), sync=True, log=True)
    store.commit_on(loop)
    run_until(loop, lambda: store._log.ahead >= CHECKPOINT_BYTES + AHEAD)
    flushes = GatedFlushes(monkeypatch)      # after the log's own flushes at its start (its zeros)
    yield store, flushes
    for _ in range(100):
        flushes.let_one_through()
    store.close()


def test_a_write_is_acknowledged_after_a_flush_that_covers_its_record(gated_store, loop, tmp_path):
    store, flushes = gated_store
    acked: list[int] = []
    in_loop(loop, lambda: (store.put(QUEUE, queue_key("c", 1), b"m1"),
                           store.when_durable(lambda: acked.append(1), None, loop)))
    run_until(loop, lambda: flushes.started == 1)
    turns(loop)
    assert acked == [], "acknowledged before the flush of its record was done"

    in_loop(loop, lambda: (store.put(QUEUE, queue_key("c", 2), b"m2"),     # appended while the first flush runs
                           store.when_durable(lambda: acked.append(2), None, loop)))
    turns(loop)
    assert queue_key("c", 2) in logged_keys(tmp_path) and flushes.started == 1, \
        "the loop did not append its record while the writer flushed"
    flushes.let_one_through()
    run_until(loop, lambda: acked == [1])
    assert queue_key("c", 1) in flushes.covered[0]
    assert queue_key("c", 2) not in flushes.covered[0]
    turns(loop)
    assert acked == [1], "acknowledged by a flush that began before its record was written"

    run_until(loop, lambda: flushes.started == 2)
    flushes.let_one_through()
    run_until(loop, lambda: acked == [1, 2])
    assert queue_key("c", 2) in flushes.covered[1]


def test_a_batch_with_a_retained_row_is_committed_by_the_writer_before_its_callback(gated_store, loop):
    store, flushes = gated_store
    acked: list[int] = []
    in_loop(loop, lambda: (store.put(QUEUE, queue_key("c", 1), b"m1"), store.put(RETAINED, b"t/1", b"retained"),
                           store.when_durable(lambda: acked.append(store.usage()["writes"]), None, loop)))
    run_until(loop, lambda: flushes.started == 1)
    turns(loop)
    assert acked == []
    flushes.let_one_through()
    run_until(loop, lambda: acked)
    assert acked[0] >= 1, "the retained row was not in LMDB when its batch was acknowledged"
    assert queue_key("c", 1) in flushes.covered[0]
