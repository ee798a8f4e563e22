"""The pages of a scan against models: what PendingWrites.page gives a page of
the pending writes (puts in its range, the deletes to look rows up in) for
random puts, deletes and batches of deletes taken and settled while later
writes go on, with reads at random moments; then a LmdbStore's scans, in
pages smaller than the rows scanned, against a dict (test_pending_overlay.py
covers lookup and rows)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.storage import lmdb_env, lmdb_store
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.writer import PendingWrites

KEYS = st.sampled_from([b"a\x00" + bytes([n]) for n in range(6)] + [b"b\x00" + bytes([n]) for n in range(6)]
                       + [b"ab\x00\x01"])
VALUES = st.binary(min_size=1, max_size=3)
PREFIXES = st.sampled_from([b"", b"a", b"a\x00", b"b\x00", b"ab"])
STEPS = st.lists(st.one_of(
    st.tuples(st.just("put"), KEYS, VALUES),
    st.tuples(st.just("delete"), KEYS),
    st.tuples(st.just("delete_many"), st.lists(KEYS, max_size=4)),
    st.tuples(st.just("take")),
    st.tuples(st.just("settle")),
    st.tuples(st.just("read"), PREFIXES, KEYS),
), max_size=40)


def latest_ops(unsettled: list) -> dict:
    """key -> value (None: deleted) of the latest unsettled op of each key."""
    latest = {}
    for _, _, key, value in unsettled:
        latest[key] = value
    return latest


@given(steps=STEPS)
@settings(max_examples=300, deadline=None)
def test_a_page_sees_the_latest_unsettled_op_of_each_key(steps):
    pending = PendingWrites(commit_batch=3, max_pending=1000)
    issued: list = []      # every op, in order
    settled = 0            # how many of them are settled
    taken: list = []       # batches taken, not yet settled, oldest first
    for step in steps:
        if step[0] == "put":
            pending.add("queue", step[1], step[2])
            issued.append((len(issued) + 1, "queue", step[1], step[2]))
        elif step[0] == "delete":
            pending.add("queue", step[1], None)
            issued.append((len(issued) + 1, "queue", step[1], None))
        elif step[0] == "delete_many":
            if step[1]:
                pending.delete_many("queue", step[1])
            issued += [(len(issued) + n, "queue", key, None) for n, key in enumerate(step[1], 1)]
        elif step[0] == "take":
            batch, _ = pending.take(0.0)
            if batch:
                taken.append(batch)
        elif step[0] == "settle" and taken:
            batch = taken.pop(0)
            pending.settle(batch, set())
            settled = batch[-1][0]
        elif step[0] == "read":
            check_reads(pending, latest_ops(issued[settled:]), step[1], step[2])
    for prefix in (b"", b"a\x00"):
        check_reads(pending, latest_ops(issued[settled:]), prefix, b"a\x00\x02")


def check_reads(pending: PendingWrites, latest: dict, prefix: bytes, key: bytes) -> None:
    under = sorted((k, v) for k, v in latest.items() if k.startswith(prefix))
    assert pending.rows("queue", prefix) == under
    puts, deletes = pending.page("queue", prefix, key)
    assert puts == [(k, v) for k, v in under if v is not None and k >= key]
    assert {k for k in deletes if k.startswith(prefix)} == {k for k, v in under if v is None}


SCAN_STEPS = st.lists(st.one_of(
    st.tuples(st.just("put"), KEYS, VALUES),
    st.tuples(st.just("delete_many"), st.lists(KEYS, max_size=4)),
    st.tuples(st.just("flush")),
    st.tuples(st.just("scan"), PREFIXES, st.one_of(st.none(), KEYS)),
), max_size=30)


@given(steps=SCAN_STEPS)
@settings(max_examples=60, deadline=None)
def test_scans_of_a_store_with_pending_writes_match_a_dict(steps, tmp_path_factory):
    store = LmdbStore(str(tmp_path_factory.mktemp("scan")), commit_batch=1_000_000, commit_interval_ms=60_000)
    model: dict = {}
    chunk, first_slice = lmdb_store.SCAN_CHUNK, lmdb_env.FIRST_SLICE
    lmdb_store.SCAN_CHUNK, lmdb_env.FIRST_SLICE = 3, 1    # pages of 3 rows, read 1, then 4 at a time
    try:
        for step in [*steps, ("scan", b"", None), ("scan", b"a\x00", b"a\x00\x03")]:
            if step[0] == "put":
                store.put("queue", step[1], step[2])
                model[step[1]] = step[2]
            elif step[0] == "delete_many":
                store.delete_many("queue", step[1])
                for key in step[1]:
                    model.pop(key, None)
            elif step[0] == "flush":
                store.flush()
            else:
                prefix, start = step[1], step[2]
                expected = sorted((k, v) for k, v in model.items()
                                  if k.startswith(prefix) and (start is None or k >= start))
                assert list(store.scan("queue", prefix, start)) == expected
    finally:
        lmdb_store.SCAN_CHUNK, lmdb_env.FIRST_SLICE = chunk, first_slice
        store.close()
