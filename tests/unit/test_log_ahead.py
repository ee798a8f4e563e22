"""With the write-ahead log and storage.sync = on the writer thread preallocates
the log (zeros written and flushed past the records): the loop writes no zeros
while the writer keeps ahead, and when the writer falls behind the loop's
records go past its zeros and are never overwritten by them."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from actormq.storage import checkpoint
from actormq.storage import log as write_log
from actormq.storage.base import QUEUE
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.records import queue_key
from tests.unit.test_log_flush import keys_in
from tests.unit.test_write_log_store import loop, run_until  # noqa: F401 (loop: a fixture)

VALUE = bytes(range(256)) * 4      # 1 KiB, no zeros in it


def is_log(fd: int) -> bool:
    return os.readlink(f"/proc/self/fd/{fd}").endswith(write_log.SUFFIX)


class ZeroWrites:
    """The zeros written to the log (os.pwrite: records go with pwritev), by which
    thread and where; with `hold`, the flush after a step of zeros waits until
    `release` (the writer falls behind)."""

    def __init__(self, monkeypatch, hold: bool = False) -> None:
        self._pwrite = os.pwrite
        self._fdatasync = os.fdatasync
        self.written: list[tuple[int, int, int]] = []     # (thread, offset, size)
        self._after_zeros = False
        self._held = threading.Event()
        self._gate = threading.Event()
        if not hold:
            self._gate.set()
        monkeypatch.setattr(write_log.os, "pwrite", self._zeros)
        monkeypatch.setattr(write_log.os, "fdatasync", self._flush)

    def _zeros(self, fd: int, data, offset: int) -> int:
        if is_log(fd):
            self.written.append((threading.get_ident(), offset, len(data)))
            self._after_zeros = True
        return self._pwrite(fd, data, offset)

    def _flush(self, fd: int) -> None:
        if is_log(fd) and self._after_zeros:
            self._after_zeros = False
            self._held.set()
            self._gate.wait()
        self._fdatasync(fd)

    def wait_held(self) -> None:
        assert self._held.wait(5), "the writer wrote no zeros"

    def release(self) -> None:
        self._gate.set()


@pytest.fixture
def small_log(monkeypatch):
    """A log whose reach is a few hundred KiB, in steps of 16 KiB."""
    monkeypatch.setattr(write_log, "PREALLOCATE", 16 << 10)
    monkeypatch.setattr(checkpoint, "CHECKPOINT_BYTES", 128 << 10)
    monkeypatch.setattr(checkpoint, "AHEAD", 64 << 10)


def write_turns(loop, store, first: int, count: int, per_turn: int, wait: bool) -> None:
    """`count` turns of `per_turn` queue puts each; with `wait`, each turn's writes
    acknowledged (flushed) before the next turn, as one publisher's window."""
    async def run() -> None:
        for turn in range(first, first + count):
            done = asyncio.Event()
            for n in range(per_turn):
                store.put(QUEUE, queue_key("c", turn * per_turn + n), VALUE)
            store.when_durable(done.set, None, loop)
            if wait:
                await asyncio.wait_for(done.wait(), 5)
            else:
                await asyncio.sleep(0)
    loop.run_until_complete(run())


def logged(store) -> set[bytes]:
    with open(store._log.path, "rb") as file:
        return keys_in(file.read())


def written_keys(first: int, count: int, per_turn: int) -> set[bytes]:
    return {queue_key("c", n) for n in range(first * per_turn, (first + count) * per_turn)}


def test_the_loop_writes_no_zeros_while_the_writer_keeps_ahead(tmp_path, loop, small_log, monkeypatch):
    zeros = ZeroWrites(monkeypatch)
    claims: list[int] = []
    claim = write_log.WriteLog._claim
    monkeypatch.setattr(write_log.WriteLog, "_claim", lambda self, end: (claims.append(end), claim(self, end)))
    store = LmdbStore(str(tmp_path), sync=True, log=True)
    try:
        store.commit_on(loop)
        store._committer.schedule = None    # no idle checkpoint: the log keeps its records
        reach = checkpoint.CHECKPOINT_BYTES + checkpoint.AHEAD
        run_until(loop, lambda: store._log.ahead >= reach)
        assert store._log.ahead == reach, "the start's zeros went past the log's reach"
        monkeypatch.setattr(checkpoint, "CHECKPOINT_BYTES", 1 << 20)     # no checkpoint: the log grows on
        write_turns(loop, store, 0, 100, 4, wait=True)                   # 400 KiB of records
        assert store._log.offset > reach, "the records did not pass the start's zeros"
        assert claims == [], "a record went past the zeros: the writer did not keep ahead"
        loop_thread = threading.get_ident()
        assert all(thread != loop_thread for thread, _, _ in zeros.written), "the loop wrote zeros"
        assert store._log.ahead >= store._log.offset + checkpoint.AHEAD // 2
        assert logged(store) == written_keys(0, 100, 4)
    finally:
        store.close()


def test_records_past_a_writer_held_back_are_not_overwritten_by_its_zeros(tmp_path, loop, small_log,
                                                                         monkeypatch):
    zeros = ZeroWrites(monkeypatch, hold=True)
    store = LmdbStore(str(tmp_path), sync=True, log=True)
    try:
        store.commit_on(loop)
        store._committer.schedule = None    # no idle checkpoint: the log keeps its records
        zeros.wait_held()       # its first step of zeros written, not flushed: the writer is behind
        write_turns(loop, store, 0, 40, 2, wait=False)      # 80 KiB past 16 KiB of zeros
        end = store._log.offset
        assert end > write_log.PREALLOCATE and store._log.ahead == 0
        zeros.release()
        reach = checkpoint.CHECKPOINT_BYTES + checkpoint.AHEAD
        run_until(loop, lambda: store._log.ahead >= max(reach, end + checkpoint.AHEAD))
        write_turns(loop, store, 40, 10, 2, wait=True)      # and more, over the writer's zeros
        loop_thread = threading.get_ident()
        assert all(thread != loop_thread for thread, _, _ in zeros.written), "the loop wrote zeros"
        assert all(offset >= end for _, offset, _ in zeros.written[1:]), "zeros written over the records"
        assert logged(store) == written_keys(0, 50, 2), "a record was overwritten"
    finally:
        zeros.release()
        store.close()
