"""The two stored forms of a message record: the compact binary one for a
message without properties, the orjson header (version 1) for the others and
for every record written before the compact form existed."""

import struct

import pytest

from actormq.errors import StorageError
from actormq.message import Message
from actormq.storage.records import decode_message, decode_message_header, encode_message, payload_size

# a version 1 record as earlier releases wrote it, byte for byte
OLD_HEADER = (b'{"t":"a/b","q":1,"r":true,"p":{},"e":null,"ts":12.5,"o":"pub","i":7,"b":[]}')
OLD_RECORD = b"\x01" + struct.pack(">I", len(OLD_HEADER)) + OLD_HEADER + b"hello"


def test_a_message_without_properties_is_stored_compact():
    message = Message("a/b", b"hello", 2, True, {}, 99.25, 12.5, "pub")
    data = encode_message(message, 7)
    assert data[0] == 2
    assert data == (b"\x02" + bytes([2 | 4 | 8 | 16]) + struct.pack(">ddHHH", 12.5, 99.25, 7, 3, 3)
                    + b"a/b" + b"pub" + b"hello")
    assert decode_message(data) == (message, 7)


def test_a_message_with_properties_keeps_the_orjson_header():
    message = Message("a/b", b"x", 1, False, {"content_type": "text/plain"}, None, 1.0, "pub")
    data = encode_message(message)
    assert data[0] == 1
    assert decode_message(data) == (message, None)


def test_a_record_of_an_earlier_release_still_reads():
    assert decode_message(OLD_RECORD) == (Message("a/b", b"hello", 1, True, {}, None, 12.5, "pub"), 7)


def test_the_dump_reads_the_header_of_either_form():
    for data in (OLD_RECORD, encode_message(Message("a/b", b"hello", 1, True, {}, None, 12.5, "pub"), 7)):
        header, offset = decode_message_header(data)
        assert (header["t"], header["q"], header["ts"], header["i"]) == ("a/b", 1, 12.5, 7)
        assert payload_size(header, offset, data) == 5 and data[offset:] == b"hello"


def test_a_cut_compact_record_is_a_storage_error():
    data = encode_message(Message("a/long/topic", b"", 0, False, {}, None, 0.0, "origin"))
    for cut in (5, len(data) - 3):
        with pytest.raises(StorageError, match="corrupt"):
            decode_message(data[:cut])
