"""A LmdbStore's scans against a dict, for random puts, batches of deletes and
commits, in pages smaller than the rows scanned: each page merges its
committed rows with the pending writes in its range (test_pending_overlay.py
checks what PendingWrites gives a page)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.storage import lmdb_env, lmdb_store
from actormq.storage.lmdb_store import LmdbStore

KEYS = st.sampled_from([b"a\x00" + bytes([n]) for n in range(6)] + [b"b\x00" + bytes([n]) for n in range(6)]
                       + [b"ab\x00\x01"])
VALUES = st.binary(min_size=1, max_size=3)
PREFIXES = st.sampled_from([b"", b"a", b"a\x00", b"b\x00", b"ab"])
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
