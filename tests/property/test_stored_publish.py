"""A message sent as it was stored: the PUBLISH cut from a queue row
(stored_topic_payload + encode_stored_publish) is byte for byte the codec's
own encoding of the message the row decodes to, for every protocol version,
QoS 1/2, retain, DUP, packet id and size (remaining lengths of one to three
bytes); and only the rows that may go out as stored say so (sendable_flags)."""

import pickle

from hypothesis import given
from hypothesis import strategies as st

from actormq.actors.messages import Delivery, Message
from actormq.actors.stored_delivery import StoredDelivery
from actormq.storage.records import (
    RETAIN_FLAG, decode_message, encode_message, sendable_flags, stored_topic_payload,
)
from actormq.transport.codec import StreamDecoder, encode_publish, encode_stored_publish

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#"),
                max_size=20)     # what a PUBLISH topic name may hold
payloads = st.binary(max_size=200) | st.integers(0, 20_000).map(lambda n: b"\xab" * n)
plain = st.builds(
    Message, topic_name=texts.filter(bool), payload=payloads, qos=st.integers(1, 2),
    retain=st.booleans(), properties=st.just({}), expires_at=st.none(),
    timestamp=st.floats(0, 4e9, allow_nan=False), origin=texts)


@given(plain, st.integers(1, 65535), st.booleans(), st.sampled_from([3, 4, 5]))
def test_the_publish_cut_from_a_row_is_the_codecs_own(message, packet_id, dup, version):
    row = encode_message(message)
    flags = sendable_flags(row)
    assert flags & 3 == message.qos and bool(flags & RETAIN_FLAG) == message.retain
    topic, payload = stored_topic_payload(row)
    stored = encode_stored_publish(topic, payload, flags & 3, bool(flags & RETAIN_FLAG), dup, packet_id, version)
    assert stored == encode_publish(message.topic_name, message.payload, message.qos, message.retain, dup,
                                    packet_id, None, version)
    decoder = StreamDecoder()
    decoder.version = version
    [packet] = decoder.feed(stored)
    assert (packet.topic_name, packet.payload, packet.packet_id, packet.qos, packet.retain, packet.dup) == \
        (message.topic_name, message.payload, packet_id, message.qos, message.retain, dup)


@given(plain, st.integers(1, 2**40))
def test_a_stored_delivery_is_the_delivery_its_row_decodes_to(message, seq):
    row = encode_message(message)
    flags = sendable_flags(row)
    stored = StoredDelivery(row, flags & 3, bool(flags & RETAIN_FLAG), seq)
    decoded = Delivery(decode_message(row)[0], message.qos, message.retain, (), seq)
    assert stored.message == message
    assert fields(stored) == fields(decoded)
    assert pickle.loads(pickle.dumps(stored)) == decoded     # a plain Delivery


def fields(delivery: Delivery) -> tuple:
    return delivery.message, delivery.qos, delivery.retain, delivery.subscription_ids, delivery.seq


unsendable = st.one_of(
    st.builds(Message, topic_name=st.just("t"), payload=payloads, qos=st.just(0)),
    st.builds(Message, topic_name=st.just("t"), payload=payloads, qos=st.integers(1, 2),
              expires_at=st.floats(0, 4e9, allow_nan=False)),
    st.builds(Message, topic_name=st.just("t"), payload=payloads, qos=st.integers(1, 2),
              properties=st.fixed_dictionaries({"content_type": texts})),
)


@given(unsendable)
def test_rows_that_must_be_decoded_are_not_sendable_as_stored(message):
    """QoS 0, an expiry to count down, properties (the orjson record form)."""
    assert sendable_flags(encode_message(message)) == 0


@given(plain, st.integers(0, 65535))
def test_a_released_row_is_not_sendable_as_stored(message, packet_id):
    assert sendable_flags(encode_message(message, packet_id)) == 0


def test_a_changed_message_goes_out_instead_of_the_row():
    row = encode_message(Message("t", b"stored", 1))
    delivery = StoredDelivery(row, 1, False, 1)
    delivery.message = Message("t", b"changed", 1)
    assert delivery.record is None and delivery.message.payload == b"changed"
