"""A compact record's topic and origin are encoded once per (topic, origin) pair
and remembered (up to TEXTS_KEPT pairs): records built from the remembered
texts are byte for byte those built from scratch, also after the memory was
emptied for new pairs, and for texts outside ASCII."""

import struct

from actormq.message import Message
from actormq.storage import records
from actormq.storage.records import TEXTS_KEPT, decode_message, encode_message


def golden(topic: str, origin: str, payload: bytes, qos: int, timestamp: float) -> bytes:
    """The compact record as its format says, written independently of the encoder."""
    t, o = topic.encode(), origin.encode()
    return b"\x02" + bytes([qos]) + struct.pack(">ddHHH", timestamp, 0.0, 0, len(t), len(o)) + t + o + payload


def test_records_of_many_pairs_match_the_format_before_and_after_the_texts_are_forgotten():
    pairs = [(f"t/{n}/é", f"pub-{n % 7}") for n in range(TEXTS_KEPT + 50)]
    for round_ in range(2):     # the second round reads remembered texts, or texts encoded anew
        for n, (topic, origin) in enumerate(pairs):
            message = Message(topic, b"p%d" % n, 1, False, {}, None, 5.0 + n, origin)
            data = encode_message(message)
            assert data == golden(topic, origin, b"p%d" % n, 1, 5.0 + n), (round_, n)
            assert decode_message(data) == (message, None)
    assert len(records._texts) <= TEXTS_KEPT


def test_a_remembered_pair_still_carries_the_flags_of_each_message():
    first = Message("a/b", b"x", 1, False, {}, None, 1.0, "c")
    second = Message("a/b", b"y", 2, True, {}, 9.5, 2.0, "c")
    encode_message(first)
    assert decode_message(encode_message(second, 12)) == (second, 12)
    assert decode_message(encode_message(first)) == (first, None)
