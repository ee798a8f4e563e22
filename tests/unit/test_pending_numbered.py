"""PendingWrites.add_numbered: entries an issuer builds itself, numbered from
the next seq under the writer's lock, in order after what was pending."""

from __future__ import annotations

from actormq.storage.base import QUEUE
from actormq.storage.writer import ROW_OVERHEAD, PendingWrites


def puts(rows):
    return lambda first: ([(seq, QUEUE, key, value) for seq, (key, value) in enumerate(rows, first)],
                          sum(len(key) + len(value) + ROW_OVERHEAD for key, value in rows), b"")


def test_numbered_entries_follow_the_pending_ops_and_are_read_back():
    pending = PendingWrites()
    assert pending.add(QUEUE, b"a", b"1") is True, "the first op starts a batch"
    seen = []
    assert pending.add_numbered(lambda first: seen.append(first) or puts([(b"b", b"2"), (b"c", b"3")])(first)) \
        is False, "a batch was already started"
    assert seen == [2], "numbered from the op after the last one issued"
    assert pending.lookup(QUEUE, b"c") == (True, b"3")
    ops, more = pending.take(0)
    assert [op[0] for op in ops] == [1, 2, 3] and [op[2] for op in ops] == [b"a", b"b", b"c"] and not more
    assert pending.pending_bytes == 3 * (2 + ROW_OVERHEAD)
    assert pending.add(QUEUE, b"d", b"4") is True and pending.take(0)[0][0][0] == 4, "the seqs go on after them"


def test_numbered_entries_start_a_batch_and_nothing_made_changes_nothing():
    pending = PendingWrites()
    assert pending.add_numbered(lambda first: ([], 0, b"")) is False
    assert pending.when_durable(lambda: None, None) is False, "nothing is pending"
    assert pending.add_numbered(puts([(b"k", b"v")])) is True
    ops, _ = pending.take(0)
    assert ops == [(1, QUEUE, b"k", b"v")]
    assert pending.rows(QUEUE, b"") == [(b"k", b"v")]
