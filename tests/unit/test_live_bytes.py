"""The pages in use that the quota check reads (LmdbEnv.live_bytes): a commit
counts the tables it wrote at once, and what another process wrote to the
other tables within FULL_COUNT_SECONDS."""

from __future__ import annotations

import multiprocessing
import time

from actormq.storage.lmdb_env import FULL_COUNT_SECONDS, LmdbEnv
from actormq.storage.lmdb_store import LmdbStore


def fill_retained(data_dir: str, count: int) -> None:
    store = LmdbStore(data_dir, sync=False)
    for n in range(count):
        store.put("retained", b"topic/%d" % n, b"r" * 1000)
    store.close()


def test_a_commit_counts_what_it_wrote_at_once(tmp_path):
    env = LmdbEnv(str(tmp_path), sync=False)
    try:
        empty = env.live_bytes
        env.commit([(n, "queue", b"q%06d" % n, b"m" * 500) for n in range(1, 200)])
        assert env.live_bytes >= empty + 199 * 500
        env.commit([(n, "queue", b"q%06d" % n, None) for n in range(1, 200)])
        assert env.live_bytes < empty + 199 * 500
    finally:
        env.close()


def test_what_another_process_wrote_is_counted_within_the_full_count_interval(tmp_path):
    LmdbEnv(str(tmp_path), sync=False).close()
    env = LmdbEnv(str(tmp_path), sync=False)
    try:
        env.commit([(1, "queue", b"q1", b"m")])
        before = env.live_bytes
        writer = multiprocessing.get_context("spawn").Process(target=fill_retained,
                                                              args=(str(tmp_path), 300))
        writer.start()
        writer.join(60)
        assert writer.exitcode == 0
        env.commit([(2, "queue", b"q2", b"m")])     # may still count retained as it was
        time.sleep(FULL_COUNT_SECONDS)
        env.commit([(3, "queue", b"q3", b"m")])
        assert env.live_bytes >= before + 300 * 1000
    finally:
        env.close()
