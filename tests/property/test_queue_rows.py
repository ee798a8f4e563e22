"""A queue's rows written in one go (encode_queue_rows, the rows a disc queue
hands its store once per loop turn) are the rows written one by one: for each
delivery, its queue key and encode_message of the message as the queue stores
it (with the delivery's QoS and retain flag), in order; the log entries made
with them are the write-ahead log's body of those puts; and the size a queue
counts for a row before writing it is never below the row's bytes."""

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from actormq.actors.messages import Delivery, Message
from actormq.storage.base import QUEUE
from actormq.storage.log import encode_body
from actormq.storage.records import (COMPACT_ROW_FIXED, UTF8_MOST, encode_message, encode_queue_rows,
                                     queue_ops, queue_prefix, seq_suffix)

texts = st.text(max_size=12)
topics = st.sampled_from(["a/b", "t/ü/€", "x"]) | texts.filter(bool)   # runs of shared topics, and others
messages = st.builds(
    Message, topic_name=topics, payload=st.binary(max_size=100) | st.builds(bytearray, st.binary(max_size=20)),
    qos=st.integers(0, 2), retain=st.booleans(),
    expires_at=st.none() | st.floats(0, 4e9, allow_nan=False),
    timestamp=st.floats(0, 4e9, allow_nan=False), origin=st.sampled_from(["pub", "ö"]) | texts)
deliveries = st.lists(st.builds(Delivery, message=messages, qos=st.integers(0, 2), retain=st.booleans(),
                                seq=st.integers(1, 2 ** 63)), max_size=20)


@given(texts.filter(bool), deliveries)
def test_the_rows_of_a_turn_are_the_rows_written_one_by_one(client_id, batch):
    prefix = queue_prefix(client_id)
    one_by_one = [(prefix + seq_suffix(d.seq), encode_message(replace(d.message, qos=d.qos, retain=d.retain)))
                  for d in batch]
    assert encode_queue_rows(prefix, batch) == one_by_one


@given(texts.filter(bool), deliveries, st.integers(1, 2 ** 40))
def test_the_log_entries_made_with_the_rows_are_the_logs_body_of_their_puts(client_id, batch, first_seq):
    entries: list = []
    ops = queue_ops(queue_prefix(client_id), batch, QUEUE, first_seq, entries)
    assert [op[0] for op in ops] == list(range(first_seq, first_seq + len(batch)))
    assert b"".join(entries) == encode_body(ops, [])


@given(texts.filter(bool), deliveries)
def test_the_size_counted_for_a_row_is_at_least_its_bytes(client_id, batch):
    prefix = queue_prefix(client_id)
    for (key, record), d in zip(encode_queue_rows(prefix, batch), batch):
        counted = (len(prefix) + COMPACT_ROW_FIXED + len(d.message.payload)
                   + UTF8_MOST * (len(d.message.topic_name) + len(d.message.origin)))
        assert len(key) + len(record) <= counted


@given(st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=8), st.booleans()), min_size=1, max_size=30))
def test_a_run_of_one_topic_whose_payload_size_changes_is_encoded_row_by_row(steps):
    """encode_queue_rows packs a row with a format kept while the texts and the
    payload's size stay: rows of one topic whose sizes change, and come back,
    and another topic between them, are each still the row written alone."""
    prefix = queue_prefix("c")
    batch = [Delivery(Message("x/y" if same_topic else "z", payload * size, 1, False, {}, None, 1.5, "o"),
                      1 + size % 2, size == 3, (), seq)
             for seq, (size, payload, same_topic) in enumerate(steps, 1)]
    one_by_one = [(prefix + seq_suffix(d.seq), encode_message(replace(d.message, qos=d.qos, retain=d.retain)))
                  for d in batch]
    assert encode_queue_rows(prefix, batch) == one_by_one
