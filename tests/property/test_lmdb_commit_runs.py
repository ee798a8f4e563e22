"""LmdbEnv.commit applies a batch in runs (of one table; of puts or deletes
within it): whatever the mix, LMDB ends up as if the ops were applied one by
one, in order; and a checkpoint's rows (last_writes) leave what all the ops
would (those of the tables the log holds)."""

from __future__ import annotations

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.storage.base import META, QUEUE, SESSION
from actormq.storage.checkpoint import last_writes
from actormq.storage.lmdb_env import LmdbEnv
from actormq.storage.log import LOGGED_TABLES

TABLES = [QUEUE, SESSION, META]
keys = st.sampled_from([b"a", b"b", b"c", b"client\x00\x00\x00\x01", b"z" * 40])
ops = st.lists(st.tuples(st.sampled_from(TABLES), keys, st.one_of(st.none(), st.binary(max_size=30))),
               min_size=1, max_size=60)


def one_by_one(batch) -> dict:
    state: dict = {}
    for table, key, value in batch:
        if value is None:
            state.pop((table, key), None)
        else:
            state[(table, key)] = value
    return state


def stored(env: LmdbEnv) -> dict:
    return {(table, key): value for table in TABLES for key, value in env.range(table, b"", None, 1000)[0]
            if not (table == META and key == b"format_version")}


def numbered(batch) -> list:
    return [(n, table, key, value) for n, (table, key, value) in enumerate(batch, 1)]


@settings(max_examples=150)
@given(ops)
def test_a_commit_leaves_what_the_ops_one_by_one_leave(batch):
    env = LmdbEnv(tempfile.mkdtemp(prefix="runs-"), 1 << 20, 8 << 20, sync=False)
    try:
        env.commit(numbered(batch))
        assert stored(env) == one_by_one(batch)
    finally:
        env.close()


@settings(max_examples=150)
@given(ops, ops)
def test_a_checkpoint_of_last_writes_leaves_what_all_the_ops_leave(before, batch):
    env = LmdbEnv(tempfile.mkdtemp(prefix="runs-"), 1 << 20, 8 << 20, sync=False)
    try:
        env.commit(numbered(before))
        rows = last_writes(numbered(batch))
        if rows:    # as LoggedCommitter._apply
            env.commit(rows)
        assert stored(env) == one_by_one(before + [op for op in batch if op[0] in LOGGED_TABLES])
    finally:
        env.close()
