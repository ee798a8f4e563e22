"""The write-ahead log's format (storage/log.py): records round-trip, reading
stops at a torn tail, a bad crc or a record left over from the round before a
restart from the top, and replaying a log into LMDB twice leaves what once
did."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.storage.base import QUEUE, SESSION
from actormq.storage.lmdb_env import LmdbEnv
from actormq.storage.log import decode_body, encode_body, encode_record, read_records, replay_ops

keys = st.binary(min_size=1, max_size=40)
ops = st.lists(st.tuples(st.sampled_from([QUEUE, SESSION]), keys,
                         st.one_of(st.none(), st.binary(max_size=200))), min_size=1, max_size=20)
records = st.lists(ops, min_size=1, max_size=8)


def numbered(batch):
    return [(n, table, key, value) for n, (table, key, value) in enumerate(batch, 1)]


def log_of(batches, first=1) -> bytes:
    return b"".join(encode_record(number, encode_body(numbered(batch), []))
                    for number, batch in enumerate(batches, first))


@given(records)
def test_records_round_trip(batches):
    data = log_of(batches)
    read = list(read_records(data))
    assert [number for number, _ in read] == list(range(1, len(batches) + 1))
    assert [decode_body(body) for _, body in read] == batches


@given(records, st.data())
def test_a_torn_tail_ends_the_log_at_the_last_whole_record(batches, data):
    whole = log_of(batches)
    cut = data.draw(st.integers(0, len(whole) - 1))
    read = [decode_body(body) for _, body in read_records(whole[:cut])]
    assert read == batches[:len(read)]
    assert len(read) < len(batches)
    assert len(log_of(batches[:len(read)])) <= cut < len(log_of(batches[:len(read) + 1]))


@given(records, st.data())
def test_a_flipped_byte_ends_the_log_before_its_record(batches, data):
    whole = bytearray(log_of(batches))
    at = data.draw(st.integers(0, len(whole) - 1))
    whole[at] ^= data.draw(st.integers(1, 255))
    read = [decode_body(body) for _, body in read_records(bytes(whole))]
    damaged = next(i for i in range(len(batches)) if len(log_of(batches[:i + 1])) > at)
    assert read == batches[:damaged]


@given(records, records)
def test_records_of_the_round_before_a_restart_are_not_read(old, new):
    """The log starts over from its top after a checkpoint: what the new round
    did not overwrite is left behind it, with older numbers."""
    stale = log_of(old)
    fresh = log_of(new, first=len(old) + 1)
    data = fresh + stale[len(fresh):]
    assert [decode_body(body) for _, body in read_records(data)] == new


def test_zeros_after_the_last_record_end_the_log():
    batch = [(QUEUE, b"k", b"v")]
    data = log_of([batch]) + bytes(4096)
    assert [decode_body(body) for _, body in read_records(data)] == [batch]


@given(ops, st.data())
def test_runs_encoded_by_their_issuer_make_the_same_body(batch, data):
    """encode_body with runs of the ops encoded already (as a queue's turn of
    rows comes, see records.queue_ops) is the body of the ops encoded alone."""
    numbered_ops = numbered(batch)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(batch)), max_size=6)) | {0, len(batch)})
    runs = [(numbered_ops[start][0], numbered_ops[end - 1][0], encode_body(numbered_ops[start:end], []))
            for start, end in zip(cuts, cuts[1:]) if end > start and data.draw(st.booleans())]
    assert encode_body(numbered_ops, [], runs) == encode_body(numbered_ops, [])


def test_unlogged_tables_are_handed_back():
    unlogged: list = []
    body = encode_body([(1, QUEUE, b"q", b"1"), (2, "retained", b"t", b"r"), (3, SESSION, b"s", None)], unlogged)
    assert unlogged == [(2, "retained", b"t", b"r")]
    assert decode_body(body) == [(QUEUE, b"q", b"1"), (SESSION, b"s", None)]


def final_state(env) -> dict:
    return {table: dict(env.iter_range(table)) for table in (QUEUE, SESSION)}


@settings(max_examples=30, deadline=None)
@given(records, st.integers(0, 8))
def test_replaying_twice_leaves_what_replaying_once_did(tmp_path_factory, batches, applied):
    """And records up to the checkpoint's mark (`applied`) are skipped."""
    data = log_of(batches)
    env = LmdbEnv(str(tmp_path_factory.mktemp("replay")), sync=False)
    try:
        ops, last = replay_ops(data, applied)
        assert last == max(applied, len(batches))
        expected = {QUEUE: {}, SESSION: {}}
        for batch in batches[applied:]:
            for table, key, value in batch:
                if value is None:
                    expected[table].pop(key, None)
                else:
                    expected[table][key] = value
        if ops:
            env.commit(ops)
        once = final_state(env)
        assert once == expected
        if ops:
            env.commit(ops)
        assert final_state(env) == once
    finally:
        env.close()
