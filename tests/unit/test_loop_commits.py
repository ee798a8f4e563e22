"""Who commits an LmdbStore's writes: the worker's loop with storage.sync = off
(at the end of the turn that wrote, callbacks run in that turn), the writer
thread with sync on; flush and close commit from any thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from actormq.storage.base import QUEUE
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.records import queue_key


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def write_a_turn(store: LmdbStore, loop, seen: list) -> None:
    """Three writes, each with a durability callback on `loop` that notes its
    seq, its thread and how many writes were committed by then."""
    for seq in range(1, 4):
        store.put(QUEUE, queue_key("c", seq), b"m%d" % seq)
        store.when_durable(lambda seq=seq: seen.append((seq, threading.get_ident(),
                                                        store.usage()["writes"])), None, loop)


def test_with_sync_off_the_loop_commits_a_turns_writes_at_the_end_of_the_turn(tmp_path, loop):
    store = LmdbStore(str(tmp_path), sync=False)
    store.commit_on(loop)
    seen: list = []

    async def turn() -> None:
        write_a_turn(store, loop, seen)
        assert store.usage()["commits"] == 0 and seen == []   # nothing before the turn ends
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    try:
        loop.run_until_complete(turn())
        loop_thread = threading.get_ident()
        assert seen == [(1, loop_thread, 3), (2, loop_thread, 3), (3, loop_thread, 3)]
        assert store.usage()["commits"] == 1, "one commit for the turn's three writes"
        assert [key for key, _ in store.scan(QUEUE)] == [queue_key("c", n) for n in (1, 2, 3)]
    finally:
        store.close()


def test_with_sync_off_a_flush_from_another_thread_commits_without_the_loop(tmp_path, loop):
    store = LmdbStore(str(tmp_path), sync=False)
    store.commit_on(loop)
    try:
        store.put(QUEUE, queue_key("c", 1), b"m")
        store.delete_many(QUEUE, [queue_key("c", 1)])
        store.put(QUEUE, queue_key("c", 2), b"kept")
        flusher = threading.Thread(target=store.flush)
        flusher.start()
        flusher.join(10)
        assert not flusher.is_alive()
        assert store.usage()["writes"] == 3
        loop.run_until_complete(asyncio.sleep(0))   # the turn's scheduled commit finds nothing left
        assert store.usage()["writes"] == 3
        assert list(store.scan(QUEUE)) == [(queue_key("c", 2), b"kept")]
    finally:
        store.close()


def test_with_sync_on_the_writer_thread_commits_while_the_loop_is_busy(tmp_path, loop):
    store = LmdbStore(str(tmp_path), sync=True)
    store.commit_on(loop)            # sync on: the writer thread keeps committing
    done = threading.Event()
    try:
        store.put(QUEUE, queue_key("c", 1), b"m")
        store.when_durable(done.set)
        assert done.wait(10), "the writer did not commit while the loop was not running"
        assert store.usage()["writes"] == 1
    finally:
        store.close()


def test_with_sync_on_a_running_loop_hands_its_turns_writes_to_the_writer_at_the_end_of_the_turn(tmp_path, loop):
    store = LmdbStore(str(tmp_path), sync=True)
    store.commit_on(loop)
    seen: list = []

    async def turn() -> None:
        write_a_turn(store, loop, seen)
        threading.Event().wait(0.05)     # the writer thread could run meanwhile: it was not told yet
        assert store.usage()["commits"] == 0 and seen == []
        for _ in range(200):
            if len(seen) == 3:
                return
            await asyncio.sleep(0.01)

    try:
        loop.run_until_complete(turn())
        loop_thread = threading.get_ident()
        assert seen == [(1, loop_thread, 3), (2, loop_thread, 3), (3, loop_thread, 3)]
        assert store.usage()["commits"] == 1, "one commit (one fsync) for the turn's three writes"
    finally:
        store.close()
