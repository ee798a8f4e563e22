"""The hand-over of a loop's writes to the writer thread with storage.sync = on
(storage/handover.py), on a real LMDB environment: the loop waits while the
writer puts the rows, never while it flushes; writes issued during a commit
form the next one, which the writer commits right after; a write lock held by
another process, a failing commit and a closed store do not keep the loop
waiting."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time

from actormq.errors import StorageError, StorageFullError
from actormq.storage import handover as handover_module
from actormq.storage.lmdb_env import env_path
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.records import queue_key

SLOW_FLUSH = 0.3    # s a commit's flush is made to take in these tests


def run_on_loop(store: LmdbStore, scenario):
    """scenario(loop) on a fresh event loop whose thread is the store's issuing thread."""
    async def main():
        loop = asyncio.get_running_loop()
        store.commit_on(loop)
        return await scenario(loop)
    return asyncio.run(main())


def put_rows(store: LmdbStore, first: int, count: int) -> None:
    for seq in range(first, first + count):
        store.put("queue", queue_key("c", seq), b"m" * 64)


def slow_flushes(store: LmdbStore, monkeypatch) -> list:
    """Make every commit's flush take SLOW_FLUSH (after its rows are put); the
    sizes of the commits are recorded."""
    env = store._env
    commit, keep_ahead = env.commit, env._keep_ahead
    batches: list[int] = []

    def recording_commit(ops, progress=None):
        batches.append(len(ops))
        commit(ops, progress)

    def slow_keep_ahead():
        time.sleep(SLOW_FLUSH)
        keep_ahead()
    monkeypatch.setattr(env, "commit", recording_commit)
    monkeypatch.setattr(env, "_keep_ahead", slow_keep_ahead)
    return batches


def hand_over(store: LmdbStore, loop, rows: int) -> tuple[asyncio.Event, float]:
    """Issue `rows` writes, wait for them to be durable, end the turn: the
    event set once they are, and how long the loop was parked."""
    durable = asyncio.Event()
    put_rows(store, 0, rows)
    store.when_durable(durable.set, loop=loop)
    started = time.monotonic()
    store.handover.turn_ended()
    return durable, time.monotonic() - started


def test_the_loop_waits_for_the_puts_and_goes_on_while_the_writer_flushes(tmp_path, monkeypatch):
    store = LmdbStore(str(tmp_path))
    batches = slow_flushes(store, monkeypatch)

    async def scenario(loop):
        durable, parked = hand_over(store, loop, 100)
        assert store.handover.handed == 1 and store.handover.cut_short == 0
        assert not durable.is_set()
        await asyncio.wait_for(durable.wait(), 10)
        return parked
    try:
        parked = run_on_loop(store, scenario)
        assert parked < SLOW_FLUSH / 2      # back once the rows were put, not after the flush
        assert batches == [100]
        assert store.count("queue") == 100
    finally:
        store.close()
    reopened = LmdbStore(str(tmp_path))
    try:
        assert [key for key, _ in reopened.scan("queue")] == [queue_key("c", seq) for seq in range(100)]
    finally:
        reopened.close()


def test_writes_issued_during_a_commit_are_committed_together_right_after_it(tmp_path, monkeypatch):
    store = LmdbStore(str(tmp_path))
    batches = slow_flushes(store, monkeypatch)

    async def scenario(loop):
        put_rows(store, 0, 10)
        await asyncio.sleep(0)          # the turn ends: the first ten are handed over
        await asyncio.sleep(0)
        assert store.handover.handed == 1
        for turn in range(5):           # five turns while the first commit flushes
            put_rows(store, 10 + 20 * turn, 20)
            await asyncio.sleep(0.01)
        assert store.handover.handed == 1   # nothing handed to a busy writer
        durable = asyncio.Event()
        store.when_durable(durable.set, loop=loop)
        await asyncio.wait_for(durable.wait(), 10)
    try:
        run_on_loop(store, scenario)
        assert batches == [10, 100]     # the writer, done, took the rest: one commit
        assert store.handover.handed == 1 and store.handover.cut_short == 0
        assert store.count("queue") == 110
    finally:
        store.close()


HOLD_WRITE_LOCK = textwrap.dedent("""
    import sys, lmdb
    env = lmdb.open(sys.argv[1], max_dbs=16, subdir=True)
    txn = env.begin(write=True)
    print("held", flush=True)
    sys.stdin.readline()
    txn.abort()
""")


def test_a_write_lock_held_by_another_process_cuts_the_wait_short(tmp_path):
    store = LmdbStore(str(tmp_path))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, env_path(str(tmp_path))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    async def scenario(loop):
        assert holder.stdout.readline() == "held\n"
        durable, parked = hand_over(store, loop, 50)
        assert store.handover.cut_short == 1
        await asyncio.sleep(0.05)
        assert not durable.is_set()     # the writer still waits for the lock
        holder.stdin.write("\n")
        holder.stdin.flush()
        await asyncio.wait_for(durable.wait(), 10)
        return parked
    try:
        parked = run_on_loop(store, scenario)
        assert parked < 10 * handover_module.BEGIN_WAIT + 0.05
        assert store.count("queue") == 50
    finally:
        holder.stdin.close()
        holder.wait(10)
        store.close()


def test_a_failing_commit_lets_the_loop_go_and_tells_the_waiters(tmp_path, monkeypatch):
    store = LmdbStore(str(tmp_path))

    def broken_commit(ops, progress=None):
        raise StorageError("the disk went away")
    monkeypatch.setattr(store._env, "commit", broken_commit)
    monkeypatch.setattr(handover_module, "BEGIN_WAIT", 5.0)   # a wait that ran out would show

    async def scenario(loop):
        failed = loop.create_future()
        put_rows(store, 0, 5)
        store.when_durable(lambda: failed.set_result(None),
                           lambda error: failed.set_result(error), loop)
        started = time.monotonic()
        store.handover.turn_ended()
        parked = time.monotonic() - started
        return parked, await asyncio.wait_for(failed, 10)
    try:
        parked, error = run_on_loop(store, scenario)
        assert parked < 1.0
        assert isinstance(error, StorageError) and "went away" in str(error)
    finally:
        store.close()


def test_a_full_map_lets_the_loop_go_before_the_writer_looks_for_what_fits(tmp_path, monkeypatch):
    store = LmdbStore(str(tmp_path), map_size=64 << 10, max_map_size=256 << 10)
    store.quota = 1 << 40       # put() refuses nothing: the writer finds out at commit
    slow_flushes(store, monkeypatch)
    monkeypatch.setattr(handover_module, "APPLY_WAIT", 30.0)   # a wait that ran out would show

    async def scenario(loop):
        failed = loop.create_future()
        for seq in range(600):
            store.put("queue", queue_key("c", seq), b"x" * 1000)
        store.when_durable(lambda: failed.set_result(None), failed.set_result, loop)
        store.handover.turn_ended()
        committed_when_back = store.usage()["commits"]
        return committed_when_back, await asyncio.wait_for(failed, 60)
    try:
        committed_when_back, error = run_on_loop(store, scenario)
        assert committed_when_back == 0     # back before the commits of what fits
        assert isinstance(error, StorageFullError)
        assert 0 < store.count("queue") < 600
    finally:
        store.close()


def test_a_closed_store_hands_nothing_over_and_keeps_nobody_waiting(tmp_path):
    store = LmdbStore(str(tmp_path))

    async def scenario(loop):
        put_rows(store, 0, 3)           # the end of this turn is due to hand them over ...
        store.close()                   # ... but close commits them and stops the writer
        await asyncio.sleep(0)
        assert store.handover.handed == 0
    run_on_loop(store, scenario)
    reopened = LmdbStore(str(tmp_path))
    try:
        assert reopened.count("queue") == 3
    finally:
        reopened.close()


def test_writes_from_another_thread_are_committed_without_a_hand_over(tmp_path):
    store = LmdbStore(str(tmp_path))

    async def scenario(loop):
        thread = threading.Thread(target=put_rows, args=(store, 0, 20))
        thread.start()
        thread.join()
        durable = asyncio.Event()
        store.when_durable(durable.set, loop=loop)
        await asyncio.wait_for(durable.wait(), 10)
        assert store.handover.handed == 0
    try:
        run_on_loop(store, scenario)
        assert store.count("queue") == 20
    finally:
        store.close()


def test_without_sync_there_is_no_hand_over(tmp_path):
    store = LmdbStore(str(tmp_path), sync=False)
    try:
        run_on_loop(store, lambda loop: asyncio.sleep(0))
        assert store.handover is None
    finally:
        store.close()
    assert os.path.isdir(env_path(str(tmp_path)))
