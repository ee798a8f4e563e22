"""With storage.sync = on the LMDB data file is kept preallocated: zeros are
written ahead of the last page in use, so that a commit's fdatasync overwrites
blocks the file has instead of appending. What is committed reads back the
same after a reopen, and with sync off nothing is written ahead."""

from __future__ import annotations

import os

from actormq.storage.lmdb_env import MIN_AHEAD, LmdbEnv, env_path


def data_file(tmp_path) -> str:
    return os.path.join(env_path(str(tmp_path)), "data.mdb")


def pages_in_use(env: LmdbEnv) -> int:
    return (env._env.info()["last_pgno"] + 1) * env.page_size


def commit_rows(env: LmdbEnv, first: int, count: int) -> None:
    env.commit([(seq, "queue", b"client\x00" + seq.to_bytes(8, "big"), b"m" * 200)
                for seq in range(first, first + count)])


def test_with_sync_the_data_file_stays_ahead_of_the_pages_in_use(tmp_path):
    env = LmdbEnv(str(tmp_path), sync=True)
    try:
        for batch in range(60):
            commit_rows(env, batch * 200, 200)
            ahead = os.path.getsize(data_file(tmp_path)) - pages_in_use(env)
            # the check runs before each commit's pages: at least half the wanted zeros are left then
            assert ahead >= MIN_AHEAD // 2 - 200 * 300, f"only {ahead} bytes ahead after batch {batch}"
        assert pages_in_use(env) > 2 * MIN_AHEAD, "the test did not grow the data past the first zeros"
    finally:
        env.close()
    with open(data_file(tmp_path), "rb") as data:
        data.seek(os.path.getsize(data_file(tmp_path)) - 4096)
        assert data.read() == bytes(4096)


def test_a_preallocated_store_reads_back_everything_after_a_reopen(tmp_path):
    env = LmdbEnv(str(tmp_path), sync=True)
    commit_rows(env, 0, 3000)
    env.close()
    assert os.path.getsize(data_file(tmp_path)) > 3000 * 200
    env = LmdbEnv(str(tmp_path), sync=True)
    try:
        rows = list(env.iter_range("queue", b"client\x00"))
        assert [int.from_bytes(key[-8:], "big") for key, _ in rows] == list(range(3000))
        assert all(value == b"m" * 200 for _, value in rows)
        commit_rows(env, 3000, 10)
        assert env.count("queue", b"client\x00")[0] == 3010
    finally:
        env.close()


def test_the_zeros_ahead_stay_within_the_map(tmp_path):
    env = LmdbEnv(str(tmp_path), map_size=1 << 20, max_map_size=1 << 20, sync=True)
    try:
        commit_rows(env, 0, 100)
        assert os.path.getsize(data_file(tmp_path)) <= 1 << 20
    finally:
        env.close()


def test_without_sync_nothing_is_written_ahead(tmp_path):
    env = LmdbEnv(str(tmp_path), sync=False)
    try:
        commit_rows(env, 0, 1000)
        env._env.sync(True)
        assert os.path.getsize(data_file(tmp_path)) == pages_in_use(env)
    finally:
        env.close()
