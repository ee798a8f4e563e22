"""A page of queue rows decodes as its rows do one by one: decode_messages, which
decodes the topic and origin that rows share only once, against decode_message,
for rows in either record format whose topics and origins often repeat or
join to the same bytes ("ab" + "c" and "a" + "bc")."""

from hypothesis import given
from hypothesis import strategies as st

from actormq.actors.messages import Message
from actormq.storage.records import decode_message, decode_messages, encode_message, queue_key

short = st.text(alphabet="abé", max_size=3)
messages = st.builds(
    Message, topic_name=short.filter(bool), payload=st.binary(max_size=8), qos=st.integers(0, 2),
    retain=st.booleans(), properties=st.just({}) | st.fixed_dictionaries({"content_type": short}),
    expires_at=st.none() | st.floats(0, 4e9, allow_nan=False),
    timestamp=st.floats(0, 4e9, allow_nan=False), origin=short)


@given(st.lists(st.tuples(messages, st.none() | st.integers(0, 65535)), max_size=12))
def test_a_page_decodes_as_its_rows_one_by_one(page):
    rows = [(queue_key("c", n), encode_message(message, packet_id)) for n, (message, packet_id) in enumerate(page)]
    decoded = decode_messages(rows)
    assert decoded == [decode_message(value) for _, value in rows]
    assert [message for message, _ in decoded] == [message for message, _ in page]
