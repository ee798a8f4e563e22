"""A disc queue's rows wait in the queue until the end of the loop's turn and
go to the store in one go (LmdbStore.defer): reads, deletes and durability
waits of the same turn see them as if each had been put at once, a flush
from another thread commits them, and with sync on the writer commits them
at the end of the turn."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from actormq.actors.messages import Delivery, Message
from actormq.actors.queue import Queue, QueueLimits
from actormq.storage.base import QUEUE
from actormq.storage.records import queue_prefix
from actormq.storage.stores import open_stores

UNLIMITED = QueueLimits(0, 0)


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def disc_queue(tmp_path, loop, sync: bool):
    stores = open_stores(str(tmp_path), "ram", "disc", sync=sync)
    stores.commit_on(loop)
    return stores, Queue("c", UNLIMITED, stores.queue, durable=True)


def delivery(n: int) -> Delivery:
    return Delivery(Message("t", b"m%d" % n, qos=1, timestamp=float(n), origin="p"), 1, False)


def stored(stores) -> list[bytes]:
    return [value[-2:] for _, value in stores.queue.scan(QUEUE, queue_prefix("c"))]


def test_rows_of_a_turn_are_read_deleted_and_made_durable_in_order(tmp_path, loop):
    stores, queue = disc_queue(tmp_path, loop, sync=False)
    seen: list = []

    async def turn() -> None:
        first, second, third = delivery(1), delivery(2), delivery(3)
        for each in (first, second, third):
            queue.enqueue(each)
        assert stores.queue._inner.usage()["writes"] == 0, "nothing handed over before the turn ends"
        assert stored(stores) == [b"m1", b"m2", b"m3"], "a read sees the rows not committed yet"
        queue.enqueue(delivery(4))
        queue.discard(queue.pop())          # the put of row 1, then its delete
        queue.flush()
        stores.queue.when_durable(lambda: seen.append(stores.queue._inner.usage()["writes"]), None, loop)
        queue.enqueue(delivery(5))          # after the wait: the next commit's
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    try:
        loop.run_until_complete(turn())
        assert seen == [6], "one commit of the turn's five puts and the delete, then the wait's callback"
        assert stored(stores) == [b"m2", b"m3", b"m4", b"m5"]
    finally:
        stores.close()
    stores = open_stores(str(tmp_path), "ram", "disc")
    try:
        assert stored(stores) == [b"m2", b"m3", b"m4", b"m5"]
    finally:
        stores.close()


def test_a_flush_from_another_thread_commits_the_rows_the_running_loop_kept(tmp_path, loop):
    stores, queue = disc_queue(tmp_path, loop, sync=False)
    flushed = threading.Event()

    async def turn() -> None:
        queue.enqueue(delivery(1))
        queue.enqueue(delivery(2))
        threading.Thread(target=lambda: (stores.flush(), flushed.set())).start()
        while not flushed.is_set():     # the flush needs the loop to hand the rows over
            await asyncio.sleep(0.01)

    try:
        loop.run_until_complete(asyncio.wait_for(turn(), 10))
        assert stores.queue._inner.usage()["writes"] == 2
    finally:
        stores.close()


def test_with_sync_on_the_writer_commits_the_rows_at_the_end_of_the_turn(tmp_path, loop):
    stores, queue = disc_queue(tmp_path, loop, sync=True)

    async def turn() -> None:
        for n in range(1, 4):
            queue.enqueue(delivery(n))
        deadline = time.monotonic() + 10
        while stores.queue._inner.usage()["writes"] < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    try:
        loop.run_until_complete(turn())
        assert stores.queue._inner.usage()["writes"] == 3, "no read or wait needed to commit them"
        assert stored(stores) == [b"m1", b"m2", b"m3"]
    finally:
        stores.close()


def test_outside_the_loops_thread_rows_are_put_at_once(tmp_path, loop):
    stores, queue = disc_queue(tmp_path, loop, sync=False)
    try:
        done = threading.Event()
        threading.Thread(target=lambda: (queue.enqueue(delivery(1)), done.set())).start()
        assert done.wait(10)
        assert not stores.queue._inner._deferred and stores.queue._inner._pending.pending_bytes > 0
    finally:
        stores.close()
