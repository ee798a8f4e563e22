"""Stored value encodings (the first byte of every value is its record format
version) and the key layout of the tables.

A message record is: version byte 1, 4-byte big-endian header length, an
orjson header, then raw bytes: every bytes-valued property (correlation_data)
in the order the header lists them, then the payload. Payloads are never
base64'd. A message without properties (the common case) is stored in the
compact form, version byte 2: a fixed binary header (flags: qos, retain,
whether it expires, whether it has a packet id; timestamp and expiry as
doubles; packet id, topic and origin lengths, big-endian), then the topic and
the origin in UTF-8, then the payload: three times cheaper to decode than the
orjson header, which matters where rows are read back one by one (the
disc_only queue's drain). Both forms are read. A compact QoS 1/2 record
without expiry or packet id is *sendable as stored*: a subscriber gets its
topic and payload as they are (`sendable_flags`, `stored_topic_payload`), so
the drain sends it without decoding a Message.
A session record is: version byte, orjson body.

Keys: queue rows are `queue_prefix(client_id) + 8-byte big-endian seq`;
sessions are `session_key(client_id)`; retained messages are
`retained_key(topic_name)`. Texts longer than COMPACT_LIMIT UTF-8 bytes are cut
and suffixed with 0xFF (never in UTF-8) plus their SHA-256 hex digest so every
key fits LMDB's 511-byte limit; such a client id cannot be recovered from a
queue key alone (dump.py maps it back through the session table).
"""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass, field

import orjson

from actormq.message import EMPTY_PROPS, Message
from actormq.errors import StorageError
from actormq.storage.log import put_head

MESSAGE_VERSION = 1
COMPACT_VERSION = 2
SESSION_VERSION = 1
COMPACT_LIMIT = 400
_CUT = COMPACT_LIMIT - 65
_HEADER_LEN = struct.Struct(">I")
_RECORD_START = struct.Struct(">BI")  # version, header length
_SEQ = struct.Struct(">Q")
_COMPACT = struct.Struct(">BBddHHH")  # version, flags, timestamp, expires_at, packet id, topic and origin lengths
_COMPACT_SIZE = _COMPACT.size
_TEXT_LENGTHS = _COMPACT_SIZE - 4   # where the topic's and the origin's lengths start
_unpack_compact = _COMPACT.unpack_from
_HEAD = struct.Struct(">BBddH")  # the part of _COMPACT before the two lengths
_TEXT_SIZES = struct.Struct(">HH")   # the topic's and the origin's lengths
COMPACT_ROW_FIXED = _SEQ.size + _COMPACT_SIZE   # a compact row's bytes besides its prefix, texts and payload
UTF8_MOST = 4       # UTF-8 bytes of a character at most
TEXTS_KEPT = 1024   # (topic, origin) pairs whose encoded texts are remembered
_texts: dict[tuple[str, str], bytes] = {}
_RETAIN, _EXPIRES, _HAS_ID = 4, 8, 16  # flags above the qos (bits 0-1)
RETAIN_FLAG = _RETAIN
_NOT_AS_STORED = _EXPIRES | _HAS_ID   # an expiry to count down, a released QoS 2 row
_STARTS = tuple(bytes((COMPACT_VERSION, flags)) for flags in range(_RETAIN + 3))   # a record's first 2 bytes, by flags
_NO_EXPIRY = bytes(_HEAD.size - 2 - 8)  # a record's expires_at (0.0) and packet id (0) as _HEAD packs them
_SEP = b"\x00"
_NO_BLOBS: list = []  # never changed


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What survives of an MQTT session between connections (and restarts).

    `subscriptions` maps a topic filter to its options: qos, no_local,
    retain_as_published, retain_handling, subscription_identifier.
    `expiry_interval` None means the session never expires.
    """

    client_id: str
    protocol_level: int
    expiry_interval: int | None = 0
    subscriptions: dict[str, dict] = field(default_factory=dict)
    connected: bool = False
    disconnected_at: float | None = None
    updated_at: float = 0.0


# --- keys -------------------------------------------------------------------

def compact_text(text: str) -> bytes:
    """`text` as UTF-8, cut and hashed when longer than COMPACT_LIMIT bytes."""
    raw = text.encode("utf-8")
    if len(raw) <= COMPACT_LIMIT:
        return raw
    return raw[:_CUT] + b"\xff" + hashlib.sha256(raw).hexdigest().encode("ascii")


def queue_prefix(client_id: str) -> bytes:
    return compact_text(client_id) + _SEP


seq_suffix = _SEQ.pack  # a queue key is queue_prefix(client_id) + seq_suffix(seq)


def queue_key(client_id: str, seq: int) -> bytes:
    return queue_prefix(client_id) + seq_suffix(seq)


def queue_seq(key: bytes) -> int:
    """The sequence number of a queue key (the client's part is not looked at)."""
    return _SEQ.unpack_from(key, len(key) - _SEQ.size)[0]


def split_queue_key(key: bytes) -> tuple[str, int]:
    """(client_id, seq); a compacted client id comes back in its compact form."""
    client, seq = key[:-9], key[-8:]
    if key[-9:-8] != _SEP:
        raise StorageError(f"not a queue key: {key[:40]!r}")
    return client.decode("utf-8", "replace"), _SEQ.unpack(seq)[0]


def session_key(client_id: str) -> bytes:
    return compact_text(client_id)


def retained_key(topic_name: str) -> bytes:
    return compact_text(topic_name)


# --- versioned values -------------------------------------------------------

def _version(data: bytes, known: int, what: str, readable: str = "") -> None:
    if not data:
        raise StorageError(f"empty {what} record")
    if data[0] != known:
        raise StorageError(f"unknown {what} record format version {data[0]} "
                           f"(this actormq reads {readable or known})")


def encode_message(msg: Message, packet_id: int | None = None) -> bytes:
    """A message's record: the compact form without properties (its fixed
    head, then the topic's and the origin's lengths and texts, kept encoded per
    topic and origin since a queue's rows mostly share them, then the payload),
    the orjson header form otherwise."""
    if msg.properties or not (packet_id is None or 0 <= packet_id <= 0xFFFF):
        return _encode_with_header(msg, packet_id)
    texts = _texts.get((msg.topic_name, msg.origin))
    if texts is None:
        texts = _compact_texts(msg.topic_name, msg.origin)
    payload = msg.payload
    if type(payload) is not bytes:
        payload = bytes(payload)
    flags = msg.qos | (_RETAIN if msg.retain else 0)
    expires_at = msg.expires_at
    if expires_at is None and packet_id is None:
        return _HEAD.pack(COMPACT_VERSION, flags, msg.timestamp, 0.0, 0) + texts + payload
    if expires_at is not None:
        flags |= _EXPIRES
    if packet_id is not None:
        flags |= _HAS_ID
    return b"".join((_HEAD.pack(COMPACT_VERSION, flags, msg.timestamp, expires_at or 0.0, packet_id or 0),
                     texts, payload))


def encode_queue_rows(prefix: bytes, deliveries) -> list[tuple[bytes, bytes]]:
    """The queue rows (key, record) of a queue's deliveries without properties,
    in order (the rows of queue_ops)."""
    return [(key, record) for _, _, key, record in queue_ops(prefix, deliveries, "queue", 1, [])]


def queue_ops(prefix: bytes, deliveries, table: str, first_seq: int, entries: list) -> list:
    """The puts (op seq, `table`, key, record) of a queue's deliveries without
    properties (objects with `message`, `qos`, `retain` and `seq`; their
    messages have no properties), in order, numbered from `first_seq`: the
    pending writes' entries made here, with no list between; and, added to
    `entries`, what the write-ahead log holds of each (its put's head, the key,
    the record: `b"".join(entries)` is the log's body of the puts, see
    log.encode_body). The key is `prefix` + seq, the record is encode_message's
    of the message stored with the delivery's QoS and retain flag. One loop for
    a turn's rows of a queue; a record is one struct pack (its head, the topic
    and origin, the payload), whose format and log head are looked up again only
    when the topic, the origin or the payload's size changes from the row before
    (a queue's rows mostly share them)."""
    ops = []
    append = ops.append
    pack_key = _key_struct(len(prefix)).pack     # the prefix and the seq in one bytes
    key_size = len(prefix) + _SEQ.size
    topic = origin = None
    texts = b""
    size = -1
    pack_row = None
    head = b""
    for op_seq, delivery in enumerate(deliveries, first_seq):
        message = delivery.message
        if message.topic_name != topic or message.origin != origin:
            topic, origin = message.topic_name, message.origin
            texts = _texts.get((topic, origin)) or _compact_texts(topic, origin)
            size = -1
        payload = message.payload
        if type(payload) is not bytes:
            payload = bytes(payload)
        if len(payload) != size:
            size = len(payload)
            pack_row = _row_struct(len(texts), size).pack
            head = put_head(table, key_size, _HEAD.size + len(texts) + size)
            tail = _NO_EXPIRY + texts
            pack_lasting = _lasting_row_struct(len(tail), size).pack
        key = pack_key(prefix, delivery.seq)
        expires_at = message.expires_at
        if expires_at is None:
            record = pack_lasting(_STARTS[delivery.qos + delivery.retain * _RETAIN], message.timestamp, tail, payload)
        else:
            record = pack_row(COMPACT_VERSION, delivery.qos | (_RETAIN if delivery.retain else 0) | _EXPIRES,
                              message.timestamp, expires_at, 0, texts, payload)
        append((op_seq, table, key, record))
        entries += (head, key, record)
    return ops


@functools.lru_cache(maxsize=64)
def _key_struct(prefix_size: int) -> struct.Struct:
    """A queue key of a prefix of that size: the prefix, then the seq (as seq_suffix)."""
    return struct.Struct(f">{prefix_size}sQ")


@functools.lru_cache(maxsize=256)
def _lasting_row_struct(tail_size: int, payload_size: int) -> struct.Struct:
    """_row_struct's record of a message without expiry, in four parts: the version
    and the flags (_STARTS), the timestamp, the rest of the head and the texts
    (_NO_EXPIRY + texts), the payload."""
    return struct.Struct(f">2sd{tail_size}s{payload_size}s")


@functools.lru_cache(maxsize=256)
def _row_struct(texts_size: int, payload_size: int) -> struct.Struct:
    """A compact record without packet id of texts and a payload of these sizes:
    the fixed head (_HEAD), the texts (as _compact_texts), the payload."""
    return struct.Struct(f"{_HEAD.format}{texts_size}s{payload_size}s")


def _encode_with_header(msg: Message, packet_id: int | None) -> bytes:
    """The record of a message with properties (version 1: the orjson header)."""
    props = msg.properties
    blobs = _NO_BLOBS
    if props:
        blobs = [(name, bytes(value)) for name, value in props.items() if isinstance(value, (bytes, bytearray))]
        if blobs:
            props = {name: value for name, value in props.items() if not isinstance(value, (bytes, bytearray))}
    header = orjson.dumps({
        "t": msg.topic_name, "q": msg.qos, "r": msg.retain, "p": props, "e": msg.expires_at,
        "ts": msg.timestamp, "o": msg.origin, "i": packet_id,
        "b": [[name, len(blob)] for name, blob in blobs] if blobs else _NO_BLOBS,
    })
    payload = msg.payload
    if type(payload) is not bytes:
        payload = bytes(payload)
    start = _RECORD_START.pack(MESSAGE_VERSION, len(header))
    if blobs:
        return b"".join((start, header, *(blob for _, blob in blobs), payload))
    return start + header + payload


def _compact_texts(topic_name: str, origin_name: str) -> bytes:
    """The lengths and the texts of a compact record's topic and origin, remembered."""
    topic = topic_name.encode("utf-8")
    origin = origin_name.encode("utf-8")
    texts = _TEXT_SIZES.pack(len(topic), len(origin)) + topic + origin
    if len(_texts) >= TEXTS_KEPT:
        _texts.clear()
    _texts[(topic_name, origin_name)] = texts
    return texts


def decode_message_header(data: bytes) -> tuple[dict, int]:
    """The header dict (as version 1 stores it) and the offset where its raw bytes start."""
    if data and data[0] == COMPACT_VERSION:
        msg, packet_id = decode_message(data)
        header = {"t": msg.topic_name, "q": msg.qos, "r": msg.retain, "p": {}, "e": msg.expires_at,
                  "ts": msg.timestamp, "o": msg.origin, "i": packet_id, "b": []}
        return header, len(data) - len(msg.payload)
    if not data or data[0] != MESSAGE_VERSION:
        _version(data, MESSAGE_VERSION, "message", f"{MESSAGE_VERSION} and {COMPACT_VERSION}")
    try:
        (size,) = _HEADER_LEN.unpack_from(data, 1)
        header = orjson.loads(memoryview(data)[5:5 + size])
    except (struct.error, orjson.JSONDecodeError) as error:
        raise StorageError(f"corrupt message record: {error}") from None
    return header, 5 + size


def decode_message(data: bytes) -> tuple[Message, int | None]:
    """The message of a record and the packet id stored with it (None: none)."""
    return decode_messages(((b"", data),))[0]


def _decode_with_header(data: bytes) -> tuple[Message, int | None]:
    """decode_message of a record in the orjson header form (version 1)."""
    header, offset = decode_message_header(data)
    props = header["p"]
    if props and "user_property" in props:
        props["user_property"] = [tuple(pair) for pair in props["user_property"]]
    blobs = header["b"]
    if blobs:
        for name, size in blobs:
            props[name] = data[offset:offset + size]
            offset += size
    msg = Message(header["t"], data[offset:], header["q"], header["r"], props, header["e"],
                  header["ts"], header["o"])
    return msg, header["i"]


def decode_messages(rows: list[tuple[bytes, bytes]]) -> list[tuple[Message, int | None]]:
    """decode_message of the value of each (key, value) row, for a page of a
    queue: the compact form is decoded inline (a drain of a disc_only queue
    decodes every row it sends), and the topic and origin of rows that share
    them (most rows of one queue) are decoded once."""
    decoded = []
    append = decoded.append
    texts: dict[bytes, tuple[str, str]] = {}
    for _, data in rows:
        if not data or data[0] != COMPACT_VERSION:
            append(_decode_with_header(data))
            continue
        try:
            _, flags, timestamp, expires_at, packet_id, topic_size, origin_size = _unpack_compact(data)
            middle = _COMPACT_SIZE + topic_size
            end = middle + origin_size
            if end > len(data):
                raise StorageError("corrupt message record: shorter than its header says")
            raw = data[_TEXT_LENGTHS:end]   # both lengths, the topic and the origin
            names = texts.get(raw)
            if names is None:
                names = texts[raw] = (data[_COMPACT_SIZE:middle].decode(), data[middle:end].decode())
        except (struct.error, UnicodeDecodeError) as error:
            raise StorageError(f"corrupt message record: {error}") from None
        append((Message(names[0], data[end:], flags & 3, flags & _RETAIN != 0, EMPTY_PROPS,
                        expires_at if flags & _EXPIRES else None, timestamp, names[1]),
                packet_id if flags & _HAS_ID else None))
    return decoded


def sendable_flags(data: bytes) -> int:
    """The flags (qos in bits 0-1, RETAIN_FLAG) of a record a subscriber can get
    as stored: compact, QoS 1 or 2, no expiry, no packet id; 0 for any other."""
    if len(data) < _COMPACT_SIZE or data[0] != COMPACT_VERSION:
        return 0
    flags = data[1]
    return flags if flags & 3 and not flags & _NOT_AS_STORED else 0


def stored_topic_payload(data: bytes) -> tuple[bytes, bytes]:
    """The topic name (UTF-8) and the payload of a compact record, as stored."""
    topic_size, origin_size = _TEXT_SIZES.unpack_from(data, _TEXT_LENGTHS)
    middle = _COMPACT_SIZE + topic_size
    return data[_COMPACT_SIZE:middle], data[middle + origin_size:]


def payload_size(header: dict, offset: int, data: bytes) -> int:
    """Size of the payload of a record whose header was decoded separately."""
    return len(data) - offset - sum(size for _, size in header["b"])


def encode_session(record: SessionRecord) -> bytes:
    body = orjson.dumps({
        "client_id": record.client_id, "protocol_level": record.protocol_level,
        "expiry_interval": record.expiry_interval, "subscriptions": record.subscriptions,
        "connected": record.connected, "disconnected_at": record.disconnected_at,
        "updated_at": record.updated_at,
    })
    return bytes([SESSION_VERSION]) + body


def decode_session(data: bytes) -> SessionRecord:
    _version(data, SESSION_VERSION, "session")
    try:
        return SessionRecord(**orjson.loads(data[1:]))
    except (orjson.JSONDecodeError, TypeError) as error:
        raise StorageError(f"corrupt session record: {error}") from None
