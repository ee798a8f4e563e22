"""The MQTT data representations (section 1.5) and the errors bad input raises.

Two and four byte integers, variable byte integers, UTF-8 encoded strings and
binary data, read from an immutable `bytes` buffer between a position and an
end (so a field can never run past its packet), and written to `bytes`.
Readers return `(value, new_pos)` and raise only `ProtocolError`.
"""

import struct

from actormq.errors import ProtocolError
from actormq.transport.codec.reason_codes import ReasonCode

VARINT_MAX = 268_435_455
U16 = struct.Struct("!H")
U32 = struct.Struct("!L")

_SMALL_VARINTS = tuple(bytes((n,)) for n in range(128))


def malformed(detail: str) -> ProtocolError:
    return ProtocolError(ReasonCode.MALFORMED_PACKET, detail)


def protocol_error(detail: str) -> ProtocolError:
    return ProtocolError(ReasonCode.PROTOCOL_ERROR, detail)


def encode_varint(n: int) -> bytes:
    """A Variable Byte Integer (section 1.5.5), in the fewest bytes."""
    if n < 128:
        return _SMALL_VARINTS[n]
    if n > VARINT_MAX:
        raise ValueError(f"variable byte integer out of range: {n}")
    out = bytearray()
    while n:
        digit = n & 0x7F
        n >>= 7
        out.append(digit | 0x80 if n else digit)
    return bytes(out)


def decode_varint(data: bytes, pos: int, end: int | None = None) -> tuple[int, int]:
    """Read a Variable Byte Integer; more than 4 bytes or a non-minimal form is malformed."""
    if end is None:
        end = len(data)
    value = 0
    for index in range(4):
        if pos >= end:
            raise malformed("truncated variable byte integer")
        digit = data[pos]
        pos += 1
        value |= (digit & 0x7F) << (7 * index)
        if digit < 0x80:
            if digit == 0 and index:
                raise malformed("variable byte integer not in its shortest form [MQTT-1.5.5-1]")
            return value, pos
    raise malformed("variable byte integer longer than 4 bytes")


def read_byte(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise malformed("truncated byte")
    return data[pos], pos + 1


def read_u16(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 2 > end:
        raise malformed("truncated two byte integer")
    return (data[pos] << 8) | data[pos + 1], pos + 2


def read_u32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 4 > end:
        raise malformed("truncated four byte integer")
    return U32.unpack_from(data, pos)[0], pos + 4


def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    return decode_varint(data, pos, end)


def read_binary(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    if pos + 2 > end:
        raise malformed("truncated length prefix")
    stop = pos + 2 + ((data[pos] << 8) | data[pos + 1])
    if stop > end:
        raise malformed("field runs past the end of the packet")
    return data[pos + 2:stop], stop


def decode_utf8(raw: bytes) -> str:
    """A UTF-8 encoded string's text: well-formed, no surrogates, no U+0000 [MQTT-1.5.4-1/2]."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("ill-formed UTF-8 encoded string [MQTT-1.5.4-1]") from None
    if "\x00" in text:
        raise malformed("U+0000 in a UTF-8 encoded string [MQTT-1.5.4-2]")
    return text


def read_utf8(data: bytes, pos: int, end: int) -> tuple[str, int]:
    raw, pos = read_binary(data, pos, end)
    return decode_utf8(raw), pos


def read_utf8_pair(data: bytes, pos: int, end: int) -> tuple[tuple[str, str], int]:
    key, pos = read_utf8(data, pos, end)
    value, pos = read_utf8(data, pos, end)
    return (key, value), pos


def encode_binary(value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"field longer than 65535 bytes: {len(value)}")
    return U16.pack(len(value)) + value


def encode_utf8(value: str) -> bytes:
    return encode_binary(value.encode("utf-8"))


def encode_utf8_pair(pair: tuple[str, str]) -> bytes:
    return encode_utf8(pair[0]) + encode_utf8(pair[1])
