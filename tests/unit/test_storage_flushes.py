"""When a commit is durable: with storage.sync = on a commit flushes its data but
not its meta page, so its writes are settled (their acknowledgements released)
only after a later flush of the file — the next commit that wrote, or a flush
of its own when the writer is idle; with sync off a commit settles at once."""

from __future__ import annotations

import pytest

from actormq.storage.lmdb_env import LmdbEnv
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.records import queue_key
from actormq.storage.writer import Committer, PendingWrites


class Batches:
    """A PendingWrites and a Committer over one environment, driven by hand."""

    def __init__(self, path: str, sync: bool) -> None:
        self.env = LmdbEnv(path, sync=sync)
        self.pending = PendingWrites()
        self.committer = Committer(self.env, self.pending)
        self.settled: list[str] = []

    def commit(self, name: str, ops) -> None:
        """Issue `ops` (table, key, value or None), note when they settle, commit them."""
        for table, key, value in ops:
            self.pending.add(table, key, value)
        self.pending.when_durable(lambda: self.settled.append(name), None)
        taken, more = self.pending.take(0)
        assert not more
        self.committer.commit(taken)

    def close(self) -> None:
        self.committer.flush()
        self.env.close()


@pytest.fixture
def synced(tmp_path):
    batches = Batches(str(tmp_path), sync=True)
    yield batches
    batches.close()


def row(seq: int) -> tuple[str, bytes, bytes]:
    return "queue", queue_key("c", seq), b"message %d" % seq


def test_a_commit_with_sync_on_is_settled_by_the_next_commit_that_flushes(synced):
    synced.commit("first", [row(1), row(2)])
    assert synced.settled == []
    assert synced.env.get("queue", queue_key("c", 2)) == b"message 2"    # committed, not yet durable
    assert synced.committer.unflushed
    synced.commit("second", [row(3)])
    assert synced.settled == ["first"]
    synced.committer.flush()
    assert synced.settled == ["first", "second"]
    assert not synced.committer.unflushed


def test_a_commit_that_wrote_nothing_flushed_nothing_and_settles_nothing(synced):
    synced.commit("put", [row(1)])
    synced.commit("no-op", [("queue", queue_key("c", 99), None)])  # a delete of a row never written
    assert synced.settled == []
    synced.committer.flush()
    assert synced.settled == ["put", "no-op"]


def test_a_commit_with_sync_off_is_settled_at_once(tmp_path):
    batches = Batches(str(tmp_path), sync=False)
    try:
        batches.commit("first", [row(1)])
        assert batches.settled == ["first"]
        assert not batches.committer.unflushed
    finally:
        batches.close()


def test_the_writer_flushes_when_it_has_nothing_more_to_commit(tmp_path):
    """No later write comes: the writer's own flush settles the last commit."""
    store = LmdbStore(str(tmp_path), sync=True)
    try:
        for seq in range(1, 4):
            store.put("queue", queue_key("c", seq), b"m")
        store.flush()   # returns once every write issued is durable
        assert not store._committer.unflushed
        assert [key for key, _ in store.scan("queue", b"c\x00")] == [queue_key("c", n) for n in (1, 2, 3)]
    finally:
        store.close()
