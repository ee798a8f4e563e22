"""An LmdbStore with the write-ahead log (storage.log = on): writes are durable,
and their callbacks run, once logged; reads see them before LMDB holds them;
LMDB gets them at the idle checkpoint, or at once for when_stored and flush;
a row put and deleted before the checkpoint never reaches LMDB; a queue's turn
of rows is logged once each, in order, whether its run of rows falls in one
batch or is cut by several; the log of a killed process is replayed by the next
store opened on the data dir."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from actormq.actors.messages import Delivery, Message
from actormq.actors.queue import Queue, QueueLimits
from actormq.storage.base import QUEUE, SESSION
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.log import LOG_DIR, decode_body, read_records
from actormq.storage.records import queue_key


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def logged_store(path, loop, sync: bool) -> LmdbStore:
    store = LmdbStore(str(path), sync=sync, log=True)
    store.commit_on(loop)
    return store


@pytest.fixture
def store(tmp_path, loop):
    """A logged store with sync off, closed after the test."""
    store = logged_store(tmp_path, loop, sync=False)
    yield store
    store.close()


def logs(path) -> list[str]:
    return sorted(name for name in os.listdir(path / LOG_DIR) if name.endswith(".log"))


def run_until(loop, condition, timeout=5.0) -> None:
    async def wait() -> None:
        for _ in range(int(timeout / 0.005)):
            if condition():
                return
            await asyncio.sleep(0.005)
        raise AssertionError("timed out")
    loop.run_until_complete(wait())


@pytest.mark.parametrize("sync", [False, True])
def test_a_write_is_acknowledged_once_logged_and_reaches_lmdb_at_the_idle_checkpoint(tmp_path, loop, sync):
    store = logged_store(tmp_path, loop, sync)
    durable: list = []
    try:
        store.put(QUEUE, queue_key("c", 1), b"m1")
        store.put(SESSION, b"c", b"record")
        store.when_durable(lambda: durable.append(store.usage()["writes"]), None, loop)
        run_until(loop, lambda: durable)
        assert durable == [0], "acknowledged before anything was written to LMDB"
        assert store.get(QUEUE, queue_key("c", 1)) == b"m1"
        assert [key for key, _ in store.scan(QUEUE)] == [queue_key("c", 1)]
        assert os.path.getsize(tmp_path / LOG_DIR / logs(tmp_path)[0]) > 0
        run_until(loop, lambda: store.usage()["writes"] >= 2)   # the checkpoint, once the log is idle
        assert store.get(SESSION, b"c") == b"record"
    finally:
        store.close()


def test_a_row_put_and_deleted_before_the_checkpoint_never_reaches_lmdb(store, loop):
    store.put(QUEUE, queue_key("c", 1), b"gone soon")
    store.put(QUEUE, queue_key("c", 2), b"kept")

    async def turn() -> None:
        await asyncio.sleep(0)
        store.delete(QUEUE, queue_key("c", 1))
        await asyncio.sleep(0)
    loop.run_until_complete(turn())
    assert store.usage()["writes"] == 0
    store.flush()
    # the delete of a key LMDB never had, the put that stays, the log's mark
    assert store.usage()["writes"] == 3
    assert [key for key, _ in store.scan(QUEUE)] == [queue_key("c", 2)]


def test_a_turn_of_queue_rows_is_logged_once_each_in_order_across_batches(tmp_path, loop):
    """The rows a queue hands over at the end of a turn come with their log body
    (records.queue_ops); a batch that ends inside them has the log encode the
    rows on each side of its end itself."""
    store = LmdbStore(str(tmp_path), sync=False, log=True, commit_batch=7)
    store.commit_on(loop)
    queue = Queue("c", QueueLimits(), store, durable=True)

    async def turn(rows: int) -> None:
        store.put(SESSION, b"c", b"session %d" % rows)     # the turn's rows start inside its first batch
        for n in range(rows):
            queue.enqueue(Delivery(Message("t/x", b"m%d" % n, 1, False, {}, None, 1.5, "p"), 1, n % 2 == 0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    try:
        loop.run_until_complete(turn(20))       # batches of 7: ops 1-7, 8-14, 15-21
        loop.run_until_complete(turn(3))        # one batch
        with open(tmp_path / LOG_DIR / logs(tmp_path)[0], "rb") as file:
            logged = [op for _, body in read_records(file.read()) for op in decode_body(body)]
        rows = [(QUEUE, key, value) for key, value in store.scan(QUEUE, queue.prefix)]
        assert len(rows) == 23
        assert logged == [(SESSION, b"c", b"session 20"), *rows[:20], (SESSION, b"c", b"session 3"), *rows[20:]]
    finally:
        store.close()


@pytest.mark.parametrize("sync", [False, True])
def test_when_stored_asks_for_a_checkpoint_at_once(tmp_path, loop, sync):
    store = logged_store(tmp_path, loop, sync)
    stored: list = []
    try:
        store.put(SESSION, b"c", b"record")
        store.when_stored(lambda: stored.append(store.usage()["writes"]), None, loop)
        run_until(loop, lambda: stored, timeout=1.0)
        assert stored[0] >= 1
    finally:
        store.close()


def test_a_clean_close_applies_the_log_and_removes_it(tmp_path, loop):
    store = logged_store(tmp_path, loop, sync=False)
    store.put(QUEUE, queue_key("c", 1), b"m1")
    store.close()
    assert logs(tmp_path) == []
    reopened = LmdbStore(str(tmp_path), sync=False)
    try:
        assert reopened.get(QUEUE, queue_key("c", 1)) == b"m1"
        assert [key for key, _ in reopened.scan("meta") if key.startswith(b"log")] == []
    finally:
        reopened.close()


KILLED = textwrap.dedent("""
    import asyncio, os, sys
    from actormq.storage.lmdb_store import LmdbStore
    from actormq.storage.records import queue_key
    loop = asyncio.new_event_loop()
    store = LmdbStore(sys.argv[1], sync=sys.argv[2] == "on", log=True)
    store.commit_on(loop)
    done = asyncio.Event()
    async def main():
        store.put("session", b"c", b"record")
        store.flush()                        # a checkpoint, then more in the log only
        for n in range(1, 201):
            store.put("queue", queue_key("c", n), b"m%d" % n)
            if n % 50 == 0:
                await asyncio.sleep(0)
        store.delete("queue", queue_key("c", 1))
        store.when_durable(done.set, None, loop)
        await done.wait()
        print("acknowledged", store.usage()["writes"], flush=True)
        os._exit(9)                          # as kill -9: no close, no checkpoint
    loop.run_until_complete(main())
""")


@pytest.mark.parametrize("sync", ["off", "on"])
def test_the_log_of_a_killed_process_is_replayed_by_the_next_store(tmp_path, sync):
    result = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path), sync], capture_output=True,
                            text=True, timeout=60, cwd=os.getcwd())
    assert result.stdout.startswith("acknowledged"), result.stderr
    assert int(result.stdout.split()[1]) <= 2, "the queue rows were in the log only"
    assert len(logs(tmp_path)) == 1
    store = LmdbStore(str(tmp_path), sync=sync == "on")
    try:
        assert logs(tmp_path) == []
        assert [key for key, _ in store.scan(QUEUE)] == [queue_key("c", n) for n in range(2, 201)]
        assert store.get(SESSION, b"c") == b"record"
        assert store.recover_logs() == 0
    finally:
        store.close()


def test_a_live_process_log_is_left_alone(store, tmp_path, loop):
    store.put(QUEUE, queue_key("c", 1), b"m1")
    run_until(loop, lambda: os.path.getsize(tmp_path / LOG_DIR / logs(tmp_path)[0]) > 0)
    assert store.recover_logs() == 0
    assert logs(tmp_path) == [f"{os.getpid()}.log"]
