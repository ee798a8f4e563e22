"""The storage contract: every mode (ram, disc, disc_only) passes the same suite;
then what only the durable modes promise (persistence, map growth, a full store,
format checks, several processes), the record encodings and the dump functions."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import lmdb
import pytest

from actormq.actors.messages import Message
from actormq.errors import StorageError, StorageFullError
from actormq.storage import open_stores
from actormq.storage.base import MAX_KEY_SIZE, Store
from actormq.storage.cached import CachedStore
from actormq.storage.dump import iter_queues, iter_retained
from actormq.storage.lmdb_env import FORMAT_KEY, env_path
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.ram import RamStore
from actormq.storage.writer import PendingWrites
from actormq.storage.records import (
    SessionRecord,
    decode_message,
    decode_session,
    encode_message,
    encode_session,
    queue_key,
    queue_prefix,
    retained_key,
    session_key,
    split_queue_key,
)

MODES = ["ram", "disc", "disc_only"]
DURABLE = ["disc", "disc_only"]
SLOW_COMMITS = {"commit_batch": 1_000_000, "commit_interval_ms": 60_000}


def make_store(mode: str, data_dir, **options) -> Store:
    builders = {
        "ram": lambda: RamStore(),
        "disc": lambda: CachedStore(LmdbStore(str(data_dir), **options)),
        "disc_only": lambda: LmdbStore(str(data_dir), **options),
    }
    return builders[mode]()


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def store(mode, tmp_path):
    opened = make_store(mode, tmp_path)
    yield opened
    opened.close()


def rows(store, table="queue", prefix=b""):
    return list(store.scan(table, prefix))


def fill_queues(store, clients=("a", "ab", "b"), per_client=3):
    for client in clients:
        for seq in range(per_client):
            store.put("queue", queue_key(client, seq), f"{client}:{seq}".encode())


# --- the contract, all modes ------------------------------------------------------

def test_get_put_replace_delete(store):
    assert store.get("retained", b"a/b") is None
    store.put("retained", b"a/b", b"one")
    assert store.get("retained", b"a/b") == b"one"
    store.put("retained", b"a/b", b"two")
    assert store.get("retained", b"a/b") == b"two"
    store.delete("retained", b"a/b")
    store.delete("retained", b"never-there")
    assert store.get("retained", b"a/b") is None


def test_tables_are_separate(store):
    store.put("retained", b"k", b"r")
    store.put("session", b"k", b"s")
    assert store.get("retained", b"k") == b"r" and store.get("session", b"k") == b"s"
    assert store.get("queue", b"k") is None


def test_scan_is_sorted_by_key(store):
    for key in [b"b", b"a/c", b"a", b"a/b", b"\xff", b"a\x00z", b"a\x00a"]:
        store.put("retained", key, key.upper())
    assert [k for k, _ in rows(store, "retained")] == sorted([b"b", b"a/c", b"a", b"a/b", b"\xff",
                                                            b"a\x00z", b"a\x00a"])
    assert dict(rows(store, "retained"))[b"a/b"] == b"A/B"


def test_scan_by_client_prefix_keeps_queue_order(store):
    fill_queues(store, per_client=300)
    got = rows(store, "queue", queue_prefix("a"))
    assert [split_queue_key(k) for k, _ in got] == [("a", seq) for seq in range(300)]
    assert got[5][1] == b"a:5"
    assert rows(store, "queue", queue_prefix("zzz")) == []


def test_scan_by_partial_prefix_spans_clients(store):
    fill_queues(store)
    assert {split_queue_key(k)[0] for k, _ in rows(store, "queue", b"a")} == {"a", "ab"}
    assert len(rows(store, "queue")) == 9
    assert [k for k, _ in rows(store, "queue", queue_prefix("a") + b"\x00\x00")] == \
        [queue_key("a", seq) for seq in range(3)]


def seqs(found):
    return [split_queue_key(key)[1] for key, _ in found]


def test_scan_from_a_start_key(store):
    fill_queues(store, per_client=300)
    a = queue_prefix("a")
    assert seqs(store.scan("queue", a, start=queue_key("a", 100))) == list(range(100, 300))
    assert seqs(store.scan("queue", a, start=queue_key("a", 100) + b"\x00")) == list(range(101, 300))
    assert seqs(store.scan("queue", a, start=b"")) == list(range(300))  # below the prefix: all of it
    assert seqs(store.scan("queue", a, start=queue_key("a", 300))) == []
    assert list(store.scan("queue", a, start=queue_prefix("b"))) == []  # above the prefix: none
    spanning = [split_queue_key(key) for key, _ in store.scan("queue", b"", start=queue_key("ab", 298))]
    assert spanning == [("ab", 298), ("ab", 299)] + [("b", seq) for seq in range(300)]


def test_scan_from_a_start_key_in_a_whole_table(store):
    for key in (b"a/1", b"a/2", b"b/1", b"b/2"):
        store.put("retained", key, key)
    assert [k for k, _ in store.scan("retained", start=b"a/2")] == [b"a/2", b"b/1", b"b/2"]
    assert [k for k, _ in store.scan("retained", b"b/", start=b"a")] == [b"b/1", b"b/2"]
    assert [k for k, _ in store.scan("retained", b"a/", start=b"a/10")] == [b"a/2"]


def test_scan_from_a_start_key_sees_pending_writes(mode, tmp_path):
    store = make_store(mode, tmp_path, **({} if mode == "ram" else SLOW_COMMITS))
    try:
        for seq in range(2500):  # more than one LMDB read chunk
            store.put("queue", queue_key("c", seq), b"committed")
        store.flush()
        store.put("queue", queue_key("c", 2500), b"pending")
        store.put("queue", queue_key("c", 1999), b"replaced")
        store.delete("queue", queue_key("c", 2000))
        store.delete("queue", queue_key("c", 1200))
        store.put("queue", queue_key("c", 50), b"pending below the start")
        got = list(store.scan("queue", queue_prefix("c"), start=queue_key("c", 1100)))
        assert seqs(got) == [s for s in range(1100, 2501) if s not in (1200, 2000)]
        assert dict(got)[queue_key("c", 1999)] == b"replaced" and got[-1][1] == b"pending"
        assert seqs(store.scan("queue", queue_prefix("c"), start=queue_key("c", 2500))) == [2500]
    finally:
        store.close()


def test_count(store):
    fill_queues(store)
    assert store.count("queue") == 9
    assert store.count("queue", queue_prefix("a")) == 3
    assert store.count("queue", b"a") == 6
    assert store.count("queue", queue_key("b", 1)) == 1
    assert store.count("queue", b"nobody") == 0
    store.delete("queue", queue_key("a", 0))
    assert store.count("queue", queue_prefix("a")) == 2 and store.count("queue") == 8


def test_delete_prefix(store):
    fill_queues(store)
    assert store.delete_prefix("queue", queue_prefix("a")) == 3
    assert store.count("queue", queue_prefix("a")) == 0
    assert store.count("queue", queue_prefix("ab")) == 3
    assert store.delete_prefix("queue", b"") == 6
    assert rows(store) == []
    assert store.delete_prefix("queue", b"x") == 0


def test_delete_many_deletes_each_key_and_skips_absent_ones(mode, tmp_path):
    store = make_store(mode, tmp_path, **({} if mode == "ram" else SLOW_COMMITS))
    try:
        fill_queues(store)
        store.flush()
        store.delete_many("queue", [queue_key("a", 0), queue_key("a", 2), queue_key("b", 1),
                                    queue_key("zz", 9)])
        store.delete_many("queue", [])
        assert [k for k, _ in rows(store, "queue", queue_prefix("a"))] == [queue_key("a", 1)]
        assert store.get("queue", queue_key("b", 1)) is None
        assert store.count("queue") == 6
        store.put("queue", queue_key("a", 0), b"again")  # a put after the delete wins
        store.flush()
        assert store.get("queue", queue_key("a", 0)) == b"again" and store.count("queue") == 7
    finally:
        store.close()
    if mode != "ram":  # and it is what a reopened store holds
        store = make_store(mode, tmp_path)
        try:
            assert [k for k, _ in rows(store, "queue", queue_prefix("a"))] == \
                [queue_key("a", 0), queue_key("a", 1)]
            assert store.count("queue") == 7
        finally:
            store.close()


def test_delete_many_refuses_an_unknown_table(store):
    with pytest.raises(StorageError):
        store.delete_many("no-such-table", [b"k"])


def test_keys_must_fit_lmdb(store):
    with pytest.raises(StorageError):
        store.put("retained", b"", b"v")
    with pytest.raises(StorageError):
        store.put("retained", b"k" * (MAX_KEY_SIZE + 1), b"v")
    store.put("retained", b"k" * MAX_KEY_SIZE, b"v")
    with pytest.raises(StorageError):
        store.put("no-such-table", b"k", b"v")


def test_when_durable_runs_after_earlier_writes(store):
    done = threading.Event()
    store.put("queue", queue_key("c", 1), b"m")
    store.when_durable(done.set)
    assert done.wait(5)
    store.flush()
    fired = []
    store.when_durable(lambda: fired.append(True))  # nothing pending: at once
    assert fired == [True]


def test_reads_see_own_writes_before_commit(mode, tmp_path):
    store = make_store(mode, tmp_path, **({} if mode == "ram" else SLOW_COMMITS))
    try:
        for seq in range(1500):
            store.put("queue", queue_key("c", seq), b"committed")
        store.flush()
        fired = []
        store.put("queue", queue_key("c", 1500), b"pending")
        store.put("queue", queue_key("c", 3), b"replaced")
        store.delete("queue", queue_key("c", 4))
        store.put("queue", queue_key("b", 0), b"other")
        store.when_durable(lambda: fired.append(True))
        if mode != "ram":
            assert fired == []  # nothing commits before 60 s or a flush
        assert store.get("queue", queue_key("c", 1500)) == b"pending"
        assert store.get("queue", queue_key("c", 3)) == b"replaced"
        assert store.get("queue", queue_key("c", 4)) is None
        got = rows(store, "queue", queue_prefix("c"))
        assert [split_queue_key(k)[1] for k, _ in got] == [s for s in range(1501) if s != 4]
        assert got[3][1] == b"replaced" and got[-1][1] == b"pending"
        assert store.count("queue", queue_prefix("c")) == 1500
        assert store.count("queue") == 1501
        store.flush()
        assert fired == [True]
        assert store.count("queue") == 1501 and store.get("queue", queue_key("c", 3)) == b"replaced"
    finally:
        store.close()


def test_durable_modes_survive_close_and_ram_does_not(mode, tmp_path):
    store = make_store(mode, tmp_path)
    fill_queues(store)
    store.put("session", b"c", b"record")
    store.delete("queue", queue_key("a", 1))
    store.close()
    store = make_store(mode, tmp_path)
    try:
        if mode == "ram":
            assert store.count("queue") == 0 and store.get("session", b"c") is None
        else:
            assert store.count("queue") == 8 and store.get("session", b"c") == b"record"
            assert store.get("queue", queue_key("a", 1)) is None
            assert rows(store, "queue", queue_prefix("b"))[2] == (queue_key("b", 2), b"b:2")
    finally:
        store.close()


# --- durable modes ----------------------------------------------------------------

@pytest.mark.parametrize("durable_mode", DURABLE)
def test_map_grows_past_its_initial_size(durable_mode, tmp_path):
    store = make_store(durable_mode, tmp_path, map_size=64 << 10, commit_batch=200)
    value = b"v" * 500
    for seq in range(4000):  # about 2 MB
        store.put("queue", queue_key(f"c{seq % 7}", seq), value)
    store.flush()
    assert store.count("queue") == 4000
    store.close()
    store = LmdbStore(str(tmp_path), map_size=64 << 10)
    try:
        assert store.map_size >= 2 << 20
        assert store.count("queue") == 4000 and store.get("queue", queue_key("c3", 3)) == value
    finally:
        store.close()


@pytest.mark.parametrize("durable_mode", DURABLE)
def test_full_store_raises_and_keeps_what_was_committed(durable_mode, tmp_path):
    store = make_store(durable_mode, tmp_path, map_size=64 << 10, max_map_size=1 << 20, commit_batch=50)
    for seq in range(100):
        store.put("queue", queue_key("early", seq), b"e" * 1000)
    store.flush()
    with pytest.raises(StorageFullError):
        for seq in range(5000):  # 5 MB cannot fit in 1 MB
            store.put("queue", queue_key("late", seq), b"l" * 1000)
    store.flush()
    assert store.count("queue", queue_prefix("early")) == 100
    stored_late = store.count("queue", queue_prefix("late"))
    assert 0 < stored_late < 1000
    store.delete_prefix("queue", queue_prefix("late"))  # deleting frees room again
    store.flush()
    store.put("queue", queue_key("after", 0), b"a" * 1000)
    store.close()
    store = LmdbStore(str(tmp_path), map_size=64 << 10, max_map_size=1 << 20)
    try:
        assert store.count("queue", queue_prefix("early")) == 100
        assert store.get("queue", queue_key("early", 99)) == b"e" * 1000
        assert store.get("queue", queue_key("after", 0)) == b"a" * 1000
    finally:
        store.close()


@pytest.mark.parametrize("durable_mode", DURABLE)
def test_a_full_store_keeps_a_reserve_for_sessions_and_deletes(durable_mode, tmp_path, caplog):
    store = make_store(durable_mode, tmp_path, map_size=1 << 20, max_map_size=1 << 20, commit_batch=50)
    try:
        refused = 0
        for seq in range(2000):  # 2 MB of queue rows for a 1 MB map
            try:
                store.put("queue", queue_key("q", seq), b"x" * 1000)
            except StorageFullError:
                refused += 1
        assert 1000 < refused < 2000
        full = [record for record in caplog.records if "is full" in record.getMessage()]
        assert len(full) == 1, "one line per episode, not one per refused row"
        # The refusals above count rows not yet committed twice, so once the
        # writer commits them a few more may fit: fill what is left, committing
        # each, until nothing pending can make room for a bigger retained row.
        store.flush()
        with pytest.raises(StorageFullError):
            for seq in range(2000, 4000):
                store.put("queue", queue_key("q", seq), b"x" * 1000)
                store.flush()
        with pytest.raises(StorageFullError):
            store.put("retained", b"r/1", b"x" * 1100)
        for n in range(50):  # session records still fit
            store.put("session", session_key(f"client-{n}"), b"s" * 200)
        store.flush()
        store.delete_prefix("queue", queue_prefix("q"))
        store.flush()  # the deletes committed: there was room for them
        store.put("queue", queue_key("q", 5000), b"x" * 1000)
        store.flush()
        assert store.count("queue") == 1 and store.count("session") == 50
    finally:
        store.close()


def test_rejected_writes_fail_their_durability_callback(tmp_path):
    store = LmdbStore(str(tmp_path), map_size=64 << 10, max_map_size=256 << 10, **SLOW_COMMITS)
    try:
        store.quota = 1 << 40  # put() refuses nothing: the writer finds out at commit
        for seq in range(600):
            store.put("queue", queue_key("c", seq), b"x" * 1000)
        outcome = []
        store.when_durable(lambda: outcome.append("ok"), outcome.append)
        with pytest.raises(StorageFullError):
            store.flush()
        assert len(outcome) == 1 and isinstance(outcome[0], StorageFullError)
        kept = store.count("queue")
        assert 0 < kept < 600  # what fits was committed, the rest is not visible
        assert len(rows(store)) == kept
    finally:
        store.close()


def test_a_writer_behind_tells_instead_of_blocking_the_issuing_thread(tmp_path):
    store = LmdbStore(str(tmp_path), commit_batch=10)  # backlogged at 10 * 50 pending ops
    told, room = [], threading.Event()
    store.on_backlog(lambda: told.append(threading.get_ident()))
    store._env._lock.acquire_exclusive()  # the writer cannot commit meanwhile
    try:
        started = time.monotonic()
        for seq in range(2000):
            store.put("queue", queue_key("c", seq), b"m")
        assert time.monotonic() - started < 5  # no put waited for the stalled writer
        assert store.backlogged
        assert len(told) == 2000 - 499 and set(told) == {threading.get_ident()}
        store.when_room(room.set)
        assert not room.is_set()
    finally:
        store._env._lock.release_exclusive()
    assert room.wait(10)
    assert not store.backlogged
    store.flush()
    assert store.count("queue") == 2000
    store.when_room(room.clear)  # not backlogged: at once
    assert not room.is_set()
    store.close()


def test_an_idle_writer_commits_at_once_and_later_writes_form_the_next_batch(tmp_path):
    store = LmdbStore(str(tmp_path))  # default: no commit interval
    try:
        batches = []
        commit = store._env.commit
        store._env.commit = lambda ops: (batches.append(len(ops)), commit(ops))
        durable = threading.Event()
        store.put("queue", queue_key("c", 0), b"first")
        store.when_durable(durable.set)
        assert durable.wait(10)  # nothing but the commit itself: no flush, no interval
        assert batches == [1]
        for seq in range(1, 5001):
            store.put("queue", queue_key("c", seq), b"m")
        store.flush()
        assert sum(batches) == 5001 and max(batches) <= 1000  # commit_batch caps a batch
        assert len(batches) < 5001 - 1000  # writes issued during a commit shared the next one
        assert store.count("queue") == 5001
    finally:
        store.close()


@pytest.mark.parametrize("sync", [True, False])
def test_committed_writes_survive_reopening_with_either_sync(sync, tmp_path):
    store = LmdbStore(str(tmp_path), sync=sync)
    store.put("queue", queue_key("c", 1), b"kept")
    store.flush()
    store.close()
    store = LmdbStore(str(tmp_path), sync=sync)
    try:
        assert store.get("queue", queue_key("c", 1)) == b"kept"
    finally:
        store.close()


def test_a_commit_keeps_newer_pending_writes_of_the_same_key_visible():
    pending = PendingWrites()
    pending.add("queue", b"k", b"v1")
    pending.add("queue", b"gone", b"x")
    batch, more = pending.take(0.0)
    assert not more
    pending.add("queue", b"k", b"v2")
    pending.add("queue", b"gone", None)
    pending.settle(batch, set())
    assert pending.lookup("queue", b"k") == (True, b"v2")
    assert pending.rows("queue", b"") == [(b"gone", None), (b"k", b"v2")]
    pending.settle(pending.take(0.0)[0], set())
    assert pending.lookup("queue", b"k") == (False, None) and pending.rows("queue", b"") == []


def set_format_version(data_dir, version: bytes) -> None:
    env = lmdb.open(env_path(str(data_dir)), max_dbs=8)
    with env.begin(write=True) as txn:
        txn.put(FORMAT_KEY, version, db=env.open_db(b"meta", txn=txn))
    env.close()


def test_incompatible_format_version_is_refused(tmp_path):
    LmdbStore(str(tmp_path)).close()
    set_format_version(tmp_path, b"99")
    with pytest.raises(StorageError, match="format version 99") as caught:
        LmdbStore(str(tmp_path))
    assert env_path(str(tmp_path)) in str(caught.value)


def test_not_an_lmdb_environment_is_refused(tmp_path):
    os.makedirs(env_path(str(tmp_path)))
    with open(os.path.join(env_path(str(tmp_path)), "data.mdb"), "wb") as garbage:
        garbage.write(b"not lmdb" * 4096)
    with pytest.raises(StorageError, match="not an actormq LMDB data directory"):
        LmdbStore(str(tmp_path))


def test_a_foreign_lmdb_environment_is_refused(tmp_path):
    env = lmdb.open(env_path(str(tmp_path)))
    with env.begin(write=True) as txn:
        txn.put(b"someone", b"else")
    env.close()
    with pytest.raises(StorageError, match="not actormq data"):
        LmdbStore(str(tmp_path))


def test_data_dir_that_cannot_be_created_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with pytest.raises(StorageError, match="cannot create or open") as caught:
        LmdbStore(str(blocker / "data"))
    assert str(blocker / "data") in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_data_dir_without_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(StorageError, match="cannot create or open"):
        LmdbStore(str(locked / "data"))


def write_rows(data_dir: str, client: str, count: int) -> None:
    store = LmdbStore(data_dir, map_size=64 << 10, commit_batch=100, commit_interval_ms=1)
    for seq in range(count):
        store.put("queue", queue_key(client, seq), client.encode() * 100)
    store.close()


def test_two_processes_write_the_same_environment(tmp_path):
    LmdbStore(str(tmp_path), map_size=64 << 10).close()
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=write_rows, args=(str(tmp_path), name, 3000)) for name in ("p1", "p2")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    store = LmdbStore(str(tmp_path))
    try:
        assert store.count("queue", queue_prefix("p1")) == 3000
        assert store.count("queue", queue_prefix("p2")) == 3000
        assert store.get("queue", queue_key("p2", 2999)) == b"p2" * 100
    finally:
        store.close()


# --- open_stores -------------------------------------------------------------------

def test_open_stores_composes_modes(tmp_path):
    stores = open_stores(str(tmp_path / "d"), "disc", "disc_only")
    try:
        assert isinstance(stores.retained, CachedStore)
        assert isinstance(stores.queue, LmdbStore) and stores.session is stores.queue
        assert stores.retained._inner is stores.queue  # one environment, one writer
    finally:
        stores.close()
    stores = open_stores(str(tmp_path / "d"), "ram", "disc")
    try:
        assert isinstance(stores.retained, RamStore) and isinstance(stores.queue, CachedStore)
    finally:
        stores.close()


def test_ram_only_never_creates_the_data_dir(tmp_path):
    stores = open_stores(str(tmp_path / "never"), "ram", "ram")
    stores.queue.put("queue", queue_key("c", 1), b"m")
    stores.close()
    assert not (tmp_path / "never").exists()


def test_unknown_mode_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="disk"):
        open_stores(str(tmp_path), "ram", "disk")


def test_cached_store_reloads_after_invalidate(tmp_path):
    inner = LmdbStore(str(tmp_path))
    cached = CachedStore(inner)
    try:
        cached.put("queue", queue_key("c", 1), b"one")
        assert rows(cached, "queue", queue_prefix("c")) == [(queue_key("c", 1), b"one")]
        inner.put("queue", queue_key("c", 2), b"written by another worker")
        inner.put("retained", b"t", b"r")
        assert cached.count("queue", queue_prefix("c")) == 1  # still the cached rows
        assert cached.get("retained", b"t") == b"r"  # first read of the table loads it
        cached.invalidate("queue", queue_prefix("c"))
        assert cached.count("queue", queue_prefix("c")) == 2
        inner.put("retained", b"t", b"r2")
        cached.invalidate("retained")
        assert cached.get("retained", b"t") == b"r2"
        cached.put("session", b"c", b"s1")
        inner.put("session", b"c", b"s2")  # sessions are never cached: always the latest
        assert cached.get("session", b"c") == b"s2" and dict(cached.scan("session")) == {b"c": b"s2"}
    finally:
        cached.close()


# --- records ---------------------------------------------------------------------------

def test_message_round_trip():
    msg = Message("a/b", b"\x00\xffpayload", qos=2, retain=True, timestamp=1700000000.25, origin="pub",
                  expires_at=1700000100.5,
                  properties={"correlation_data": b"\x01\x02", "user_property": [("k", "v"), ("k", "w")],
                              "content_type": "text/plain", "payload_format_indicator": 1})
    assert decode_message(encode_message(msg, packet_id=7)) == (msg, 7)
    assert decode_message(encode_message(Message("t", b""))) == (Message("t", b""), None)


def test_session_round_trip():
    record = SessionRecord("c1", 5, None, {"a/#": {"qos": 1, "no_local": True, "retain_as_published": False,
                                                   "retain_handling": 2, "subscription_identifier": 9}},
                           connected=True, disconnected_at=None, updated_at=12.5)
    assert decode_session(encode_session(record)) == record


def test_unknown_record_version_is_a_storage_error():
    data = encode_message(Message("t", b"p"))
    with pytest.raises(StorageError, match="version"):
        decode_message(b"\x09" + data[1:])
    with pytest.raises(StorageError, match="version"):
        decode_session(b"\x09" + encode_session(SessionRecord("c", 4))[1:])
    with pytest.raises(StorageError):
        decode_message(b"")


def test_queue_keys_sort_by_client_then_seq():
    assert split_queue_key(queue_key("client-é", 2**40)) == ("client-é", 2**40)
    assert queue_key("c", 1) < queue_key("c", 256) < queue_key("ca", 0)
    assert queue_key("c", 9).startswith(queue_prefix("c"))


def test_long_texts_are_compacted_to_fit_lmdb_keys():
    long_id = "x" * 5000
    assert len(queue_key(long_id, 1)) <= MAX_KEY_SIZE
    assert queue_prefix(long_id) != queue_prefix("x" * 4999)
    assert b"\x00" not in session_key(long_id) and len(retained_key("t/" * 40000)) <= MAX_KEY_SIZE


# --- dump ---------------------------------------------------------------------------------

def populate_and_hold(data_dir: str, ready, release) -> None:
    stores = open_stores(data_dir, "disc", "disc_only")
    for seq in range(5):
        msg = Message("q/topic", b"\x00msg" + bytes([seq]), qos=1, timestamp=1700000000 + seq)
        stores.queue.put("queue", queue_key("offline-client", seq), encode_message(msg))
    stores.queue.put("queue", queue_key("no-session", 0), encode_message(Message("x", b"p", timestamp=1.0)))
    for client, connected in (("offline-client", False), ("idle", True)):
        stores.session.put("session", session_key(client), encode_session(SessionRecord(client, 5, connected=connected)))
    stores.retained.put("retained", retained_key("r/1"), encode_message(Message("r/1", b"hello", qos=1, retain=True,
                                                                                  timestamp=1700000000)))
    stores.queue.flush()
    ready.set()
    release.wait(60)
    stores.queue.put("queue", queue_key("after", 0), b"still writable")
    stores.close()


def test_dump_reads_a_store_held_open_by_a_writer(tmp_path):
    spawn = multiprocessing.get_context("spawn")
    ready, release = spawn.Event(), spawn.Event()
    writer = spawn.Process(target=populate_and_hold, args=(str(tmp_path), ready, release))
    writer.start()
    try:
        assert ready.wait(60)
        seen = []
        queues = list(iter_queues(str(tmp_path), progress=lambda done, total: seen.append((done, total))))
        assert [(q["client_id"], q["state"], q["length"]) for q in queues] == [
            ("idle", "online", 0), ("no-session", "offline", 1), ("offline-client", "offline", 5)]
        offline = queues[2]
        assert offline["oldest"] == "2023-11-14T22:13:20.000Z" and offline["newest"] == "2023-11-14T22:13:24.000Z"
        assert queues[0]["oldest"] is None and "messages" not in offline
        assert seen and seen[-1] == (8, 8)
        [detail] = list(iter_queues(str(tmp_path), client_id="offline-client", messages=True))
        assert detail["length"] == 5 and len(detail["messages"]) == 5
        assert detail["messages"][1] == {"topic": "q/topic", "qos": 1, "size": 5,
                                         "payload_preview": "\\x00msg\\x01", "timestamp": "2023-11-14T22:13:21.000Z"}
        assert list(iter_retained(str(tmp_path))) == [
            {"topic": "r/1", "qos": 1, "size": 5, "payload_preview": "hello", "timestamp": "2023-11-14T22:13:20.000Z"}]
    finally:
        release.set()
        writer.join(60)
    assert writer.exitcode == 0


def test_dump_of_a_dir_without_data(tmp_path):
    with pytest.raises(StorageError, match="no actormq data in"):
        iter_queues(str(tmp_path))
    with pytest.raises(StorageError, match="no actormq data in"):
        iter_retained(str(tmp_path / "missing"))


def test_dump_reports_slow_progress_for_large_queues(tmp_path):
    store = LmdbStore(str(tmp_path))
    for seq in range(2500):
        store.put("queue", queue_key("big", seq), encode_message(Message("t", b"p", timestamp=time.time())))
    store.close()
    seen = []
    [big] = list(iter_queues(str(tmp_path), progress=lambda done, total: seen.append(done)))
    assert big["length"] == 2500 and seen == [1000, 2000, 2500]


def test_ram_replace_group_makes_the_rows_the_whole_group_and_leaves_the_others():
    store = RamStore()
    fill_queues(store)
    fresh = [(queue_key("a", seq), b"new") for seq in (5, 7, 9)]
    store.replace_group("queue", queue_prefix("a"), fresh)
    assert rows(store, "queue", queue_prefix("a")) == fresh
    assert [k for k, _ in rows(store, "queue", queue_prefix("ab"))] == \
        [queue_key("ab", seq) for seq in range(3)]
    assert store.count("queue") == 9
    store.replace_group("queue", queue_prefix("c"), [(queue_key("c", 1), b"c")])
    store.replace_group("queue", queue_prefix("b"), [])
    assert [k for k, _ in rows(store)] == sorted(
        [k for k, _ in fresh] + [queue_key("ab", s) for s in range(3)] + [queue_key("c", 1)])
    store.delete_many("queue", [queue_key("a", 5), queue_key("a", 7)])
    assert rows(store, "queue", queue_prefix("a")) == [(queue_key("a", 9), b"new")]
