"""A queued or retained message survives its stored record: encode_message then
decode_message gives the same message and packet id, whatever properties it
carries (binary ones travel as raw bytes behind the header)."""

from hypothesis import given
from hypothesis import strategies as st

from actormq.actors.messages import Message
from actormq.storage.records import decode_message, encode_message

texts = st.text(max_size=20)
properties = st.fixed_dictionaries({}, optional={
    "payload_format_indicator": st.integers(0, 1),
    "content_type": texts,
    "response_topic": texts.filter(bool),
    "correlation_data": st.binary(max_size=40),
    "user_property": st.lists(st.tuples(texts, texts), max_size=3),
})
messages = st.builds(
    Message, topic_name=texts.filter(bool), payload=st.binary(max_size=200), qos=st.integers(0, 2),
    retain=st.booleans(), properties=properties,
    expires_at=st.none() | st.floats(0, 4e9, allow_nan=False),
    timestamp=st.floats(0, 4e9, allow_nan=False), origin=texts)


@given(messages, st.none() | st.integers(1, 65535))
def test_a_message_record_decodes_to_the_message_it_was_made_from(message, packet_id):
    assert decode_message(encode_message(message, packet_id)) == (message, packet_id)
