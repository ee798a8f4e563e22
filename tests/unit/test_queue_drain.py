"""The disc_only drain against a real LmdbStore: the backlog read back a page at
a time while the rows already sent are deleted behind it (pending, then
committed), rows past released QoS 2 rows, the rows kept as stored beside the
ones decoded, and a data dir whose rows were written in the record formats of
earlier versions."""

from __future__ import annotations

import struct

import orjson

from actormq.actors.messages import Delivery, Message
from actormq.actors.queue import Queue, QueueLimits
from actormq.actors.stored_delivery import StoredDelivery
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.ram import RamStore
from actormq.storage.records import queue_key, queue_prefix

UNLIMITED = QueueLimits(max_online=0, max_offline=0)
SLOW_COMMITS = {"commit_batch": 1_000_000, "commit_interval_ms": 60_000}


def delivery(n: int, qos: int = 1) -> Delivery:
    return Delivery(Message("t/%d" % (n % 3), b"%d" % n, qos, False, {}, None, 1700000000.0 + n, "pub"),
                    qos, False)


def drain(queue: Queue, acknowledge_every: int) -> list[int]:
    """Pop everything, acknowledging (and flushing the deletes) in rounds."""
    got, unacked = [], []
    while True:
        d = queue.pop()
        if d is not None:
            got.append(int(d.message.payload))
            unacked.append(d)
        if d is None or len(unacked) >= acknowledge_every:
            for done in unacked:
                queue.discard(done)
            queue.flush()
            unacked = []
        if d is None:
            return got


def test_a_drain_reads_past_the_pending_deletes_of_what_it_sent(tmp_path):
    """Nothing is committed during the drain: every page sees the deletes of
    the rows sent before it only in the writer's pending overlay."""
    store = LmdbStore(str(tmp_path), **SLOW_COMMITS)
    try:
        queue = Queue("c", UNLIMITED, store, durable=True, window=50, schedule=lambda q: None)
        for n in range(730):
            queue.enqueue(delivery(n))
        store.flush()
        queue.enqueue(delivery(730))    # pending, behind the committed backlog
        assert drain(queue, acknowledge_every=7) == list(range(731))
        store.flush()
        assert store.count("queue", queue_prefix("c")) == 0
    finally:
        store.close()


def test_a_drain_with_commits_in_between_loses_and_repeats_nothing(tmp_path):
    store = LmdbStore(str(tmp_path), commit_batch=5)
    try:
        queue = Queue("c", UNLIMITED, store, durable=True, window=40, schedule=lambda q: None)
        for n in range(600):
            queue.enqueue(delivery(n))
        assert drain(queue, acknowledge_every=3) == list(range(600))
    finally:
        store.close()


def test_a_refill_reads_on_past_a_page_of_released_rows():
    store = RamStore()
    queue = Queue("c", UNLIMITED, store, window=1)
    for n in range(4):
        queue.enqueue(delivery(n, qos=2))
    _, second, third = queue.pop(), queue.pop(), queue.pop()
    queue.release(second, 7)
    queue.release(third, 8)
    reopened = Queue("c", UNLIMITED, store, window=1)
    reopened.load()
    assert int(reopened.pop().message.payload) == 0
    last = reopened.pop()       # the page after the first holds released rows only
    assert last is not None and int(last.message.payload) == 3
    assert dict(reopened.released) == {7: second.seq, 8: third.seq} and reopened.pop() is None


def old_compact_row(n: int) -> bytes:
    """A row as the compact record format (version 2) has been written since it
    came: version, flags (qos 1), timestamp, expiry, packet id, the topic's and
    the origin's lengths, then the topic, the origin and the payload."""
    topic, origin, payload = b"old/%d" % n, b"pub", b"%d" % n
    return struct.pack(">BBddHHH", 2, 1, 1700000000.0 + n, 0.0, 0, len(topic), len(origin)) + \
        topic + origin + payload


def old_json_row(n: int) -> bytes:
    """A row in the record format version 1: an orjson header, then the payload."""
    header = orjson.dumps({"t": "old/%d" % n, "q": 1, "r": False, "p": {"content_type": "text/plain"},
                           "e": None, "ts": 1700000000.0 + n, "o": "pub", "i": None, "b": []})
    return struct.pack(">BI", 1, len(header)) + header + b"%d" % n


def test_a_data_dir_written_in_the_earlier_record_formats_drains(tmp_path):
    store = LmdbStore(str(tmp_path))
    for n in range(120):
        store.put("queue", queue_key("c", n + 1), old_json_row(n) if n % 4 == 0 else old_compact_row(n))
    store.close()
    store = LmdbStore(str(tmp_path))
    try:
        queue = Queue("c", UNLIMITED, store, durable=True, window=25, schedule=lambda q: None)
        assert queue.load() == 120
        got = []
        while (d := queue.pop()) is not None:
            got.append(d)
            queue.discard(d)
        assert [int(d.message.payload) for d in got] == list(range(120))
        assert [d.message.topic_name for d in got[:2]] == ["old/0", "old/1"]
        assert got[0].message.properties == {"content_type": "text/plain"} and got[1].message.properties == {}
        assert got[1].qos == 1 and got[1].message.origin == "pub" and got[1].message.timestamp == 1700000001.0
    finally:
        store.close()


def test_a_page_keeps_sendable_rows_as_stored_and_decodes_the_others_in_place(tmp_path):
    """QoS 1/2 rows without properties or expiry come back undecoded (their
    PUBLISH is cut from the row); QoS 0, properties and an expiry are decoded;
    a released QoS 2 row stays out; the order is the queue's."""
    store = LmdbStore(str(tmp_path), **SLOW_COMMITS)
    try:
        queue = Queue("c", UNLIMITED, store, durable=True, window=4, schedule=lambda q: None)
        kinds = [
            Message("t", b"0", 1, timestamp=1.0), Message("t", b"1", 0, timestamp=1.0),
            Message("t", b"2", 2, retain=True, timestamp=1.0),
            Message("t", b"3", 1, properties={"content_type": "a"}, timestamp=1.0),
            Message("t", b"4", 1, expires_at=4e9, timestamp=1.0), Message("t", b"5", 2, timestamp=1.0),
            Message("t", b"6", 1, timestamp=1.0)]
        for message in kinds:
            queue.enqueue(Delivery(message, message.qos, message.retain))
        popped = [queue.pop() for _ in range(4)]
        queue.release(popped[2], 9)             # message 2's PUBREC came back: a released row
        reopened = Queue("c", UNLIMITED, store, durable=True, window=4, schedule=lambda q: None)
        assert reopened.load() == len(kinds)
        got = list(iter(reopened.pop, None))
        assert [d.seq for d in got] == [1, 2, 4, 5, 6, 7]
        stored = [type(d) is StoredDelivery for d in got]
        assert stored == [True, False, False, False, True, True]
        assert all(d.record is not None for d in got if type(d) is StoredDelivery)
        assert [d.message.payload for d in got] == [b"0", b"1", b"3", b"4", b"5", b"6"]
        assert [(d.qos, d.retain) for d in got] == [(1, False), (0, False), (1, False), (1, False), (2, False),
                                                    (1, False)]
        assert dict(reopened.released) == {9: 3}
    finally:
        store.close()
