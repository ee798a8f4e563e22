"""The LMDB writer seen from the event loop: nothing it does blocks the thread
that issues writes (a stalled writer, a nearly full map), a backlogged writer
holds publishers back through WriterBacklog and lets them go once it caught
up, and durability callbacks given a loop run in that loop, in order."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from actormq.errors import StorageFullError
from actormq.storage.backlog import WriterBacklog
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.records import queue_key


class Publisher:
    """What WriterBacklog holds back: anything that can hold its packets and go on."""

    def __init__(self) -> None:
        self.reading = True
        self.resumed = asyncio.Event()

    def hold_back(self) -> None:
        self.reading = False

    def go_on(self) -> None:
        self.reading = True
        self.resumed.set()


class StalledWriter:
    """Holds the environment's lock so that the writer cannot commit meanwhile."""

    def __init__(self, store: LmdbStore) -> None:
        self._lock = store._env._lock

    def __enter__(self):
        self._lock.acquire_exclusive()
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release_exclusive()


@pytest.fixture
def store(tmp_path):
    opened = LmdbStore(str(tmp_path), commit_batch=10)  # backlogged at 500 pending ops
    yield opened
    opened.close()


def test_a_backlogged_writer_holds_back_the_publishers_that_write_until_it_caught_up(store):
    async def scenario():
        loop = asyncio.get_running_loop()
        backlog = WriterBacklog(store, loop)
        first, second = Publisher(), Publisher()
        with StalledWriter(store):
            for seq in range(499):
                store.put("queue", queue_key("c", seq), b"m")
            assert not backlog.behind  # below the mark nobody is held
            store.put("queue", queue_key("c", 499), b"m")
            assert backlog.behind
            for publisher in (first, second, first):  # what a connection does after a publish
                backlog.block(publisher)
            assert not first.reading and not second.reading
            await asyncio.sleep(0.05)
            assert not first.reading, "let go while the writer was still behind"
        await asyncio.wait_for(asyncio.gather(first.resumed.wait(), second.resumed.wait()), 10)
        assert first.reading and second.reading and not store.backlogged and not backlog.behind
    asyncio.run(scenario())


def test_a_nearly_full_map_refuses_without_waiting_for_the_writer(tmp_path):
    store = LmdbStore(str(tmp_path), map_size=1 << 20, max_map_size=1 << 20, commit_batch=50)
    try:
        with StalledWriter(store):
            started, refused = time.monotonic(), 0
            for seq in range(2000):  # 2 MB for a 1 MB map, nothing committed meanwhile
                try:
                    store.put("queue", queue_key("q", seq), b"x" * 1000)
                except StorageFullError:
                    refused += 1
            assert time.monotonic() - started < 5
            assert refused > 1000
        store.flush()
        assert store.count("queue") == 2000 - refused  # what was taken was saved
    finally:
        store.close()


def test_durability_callbacks_given_a_loop_run_in_it_in_order(store):
    async def scenario():
        loop = asyncio.get_running_loop()
        ran: list = []
        done = asyncio.Event()
        for seq in range(300):
            store.put("queue", queue_key("c", seq), b"m")
            store.when_durable(lambda seq=seq: ran.append((seq, threading.get_ident())), loop=loop)
        store.when_durable(done.set, loop=loop)
        await asyncio.wait_for(done.wait(), 10)
        # nothing pending any more: the callback still waits behind those posted before it
        store.when_durable(lambda: ran.append(("late", threading.get_ident())), loop=loop)
        await asyncio.sleep(0)
        assert [seq for seq, _ in ran] == [*range(300), "late"]
        assert {thread for _, thread in ran} == {threading.get_ident()}
    asyncio.run(scenario())
