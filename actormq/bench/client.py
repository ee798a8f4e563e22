"""The benchmark's MQTT client engine: one asyncio.Protocol per socket, packets
encoded once at start-up, and a small scanner for the inbound stream.

The codec (`actormq.transport.codec`) is called only while a client is set up:
it encodes CONNECT, SUBSCRIBE, DISCONNECT, PINGREQ, the 2-byte fixed headers
of the acknowledgements, and one PUBLISH per publishing client (the
`PublishTemplate`). Per message the engine copies the template and patches the
packet id and the 16-byte payload header (see `actormq.bench.stats`) in place.

Inbound, `MqttClient.data_received` splits the stream on fixed headers and
reads only what the benchmark needs: a PUBLISH's payload offset (and packet id
to acknowledge it), the count of PUBACK / PUBCOMP and the packet id of PUBREC /
PUBREL. Every other packet (CONNACK, SUBACK, DISCONNECT, ...) goes to the
codec's `decode_packet`.

Bare connections for the connection benchmark: `actormq.bench.connector`.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass

from actormq.bench.stats import HEADER_SIZE
from actormq.errors import ProtocolError
from actormq.transport import codec

PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 3, 4, 5, 6, 7
MAX_PACKET_ID = 0xFFFF
TIMER_TICK = 0.001        # s, resolution of the event loop's timers
COALESCE_AFTER = 0.0001   # s between reads below which reading pauses a tick


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how every client of a run connects."""

    host: str = "127.0.0.1"
    port: int = 1883
    version: int = 4            # protocol level: 4 (MQTT 3.1.1) or 5
    keepalive: int = 60
    clean_start: bool = True
    session_expiry: int | None = None
    connect_timeout: float = 10.0
    username: str | None = None
    password: bytes | None = None
    tls: object = None          # an ssl.SSLContext: connect over TLS
    source: str | None = None   # the local address connections come from (bench conn)

    def connect_packet(self, client_id: str) -> bytes:
        """The CONNECT of one client (encoded by the codec)."""
        props = {}
        if self.version == 5 and self.session_expiry is not None:
            props["session_expiry_interval"] = self.session_expiry
        return codec.encode(codec.Connect(client_id=client_id, protocol_level=self.version,
                                          clean_start=self.clean_start, keepalive=self.keepalive,
                                          username=self.username, password=self.password,
                                          properties=props), self.version)


def _ack_header(packet_class, version: int) -> bytes:
    """The 2-byte fixed header the codec writes for a bare acknowledgement."""
    encoded = codec.encode(packet_class(packet_id=1), version)
    if len(encoded) != 4:
        raise AssertionError(f"{packet_class.__name__} encodes to {len(encoded)} bytes, want 4")
    return encoded[:2]


@dataclass(frozen=True, slots=True)
class AckHeaders:
    """Fixed headers of the replies the scanner writes: reply + 2-byte packet id."""

    puback: bytes
    pubrec: bytes
    pubrel: bytes
    pubcomp: bytes

    @classmethod
    def for_version(cls, version: int) -> AckHeaders:
        return cls(*(_ack_header(c, version) for c in
                     (codec.Puback, codec.Pubrec, codec.Pubrel, codec.Pubcomp)))


class PublishTemplate:
    """One encoded PUBLISH, copied and patched for every message.

    Offsets inside `data` (the whole packet):
        packet_id_offset  2-byte packet id, after the topic (QoS 1/2 only)
        header_offset     16-byte payload header = len(data) - payload size
    Between the two sits the MQTT 5 property length (one zero byte, the
    template has no properties), so for QoS 1/2 one struct with a pad byte
    patches id and header in one call.
    """

    __slots__ = ("data", "packet_id_offset", "header_offset", "_blank", "_patch", "_patch_at")

    def __init__(self, topic_name: str, size: int, qos: int, version: int) -> None:
        if size < HEADER_SIZE:
            raise ValueError(f"payload size must be at least {HEADER_SIZE} bytes")
        self.data = codec.encode_publish(topic_name, bytes(size), qos, False, False,
                                         1 if qos else None, {}, version)
        self.header_offset = len(self.data) - size
        fixed_end = _varint_end(self.data, 1)
        topic_end = fixed_end + 2 + int.from_bytes(self.data[fixed_end:fixed_end + 2], "big")
        self.packet_id_offset = topic_end if qos else None
        self._blank = bytearray(self.data)
        if qos:
            gap = self.data[topic_end + 2:self.header_offset]
            if gap.strip(b"\x00"):
                raise AssertionError("PUBLISH template carries properties")
            self._patch = struct.Struct(f">H{len(gap)}xIIQ")
            self._patch_at = topic_end
        else:
            self._patch = struct.Struct(">IIQ")
            self._patch_at = self.header_offset

    def blank(self) -> bytearray:
        """A copy of the packet to `stamp` in place, message after message."""
        return bytearray(self._blank)

    def stamp(self, out: bytearray, publisher: int, seq: int, now_ns: int) -> None:
        """Patch packet id and payload header of the one message in `out`."""
        if self.packet_id_offset is None:
            self._patch.pack_into(out, self._patch_at, publisher, seq, now_ns)
        else:
            self._patch.pack_into(out, self._patch_at, seq % MAX_PACKET_ID + 1, publisher, seq,
                                  now_ns)

    def render(self, publisher: int, first_seq: int, count: int, now_ns: int) -> bytearray:
        """`count` consecutive messages of `publisher` from `first_seq`, one buffer."""
        out = self._blank * count
        size = len(self._blank)
        pack = self._patch.pack_into
        at = self._patch_at
        if self.packet_id_offset is None:
            for seq in range(first_seq, first_seq + count):
                pack(out, at, publisher, seq, now_ns)
                at += size
        else:
            for seq in range(first_seq, first_seq + count):
                pack(out, at, seq % MAX_PACKET_ID + 1, publisher, seq, now_ns)
                at += size
        return out


def _varint_end(buf, at: int) -> int | None:
    """Index just after the variable byte integer starting at `at` (None if cut)."""
    for end in range(at, min(at + 4, len(buf))):
        if not buf[end] & 0x80:
            return end + 1
    if len(buf) - at >= 4:
        raise ProtocolError(0x81, "malformed remaining length")
    return None


def read_varint(buf, at: int) -> tuple[int, int] | None:
    """(value, end) of the variable byte integer at `at`, None if incomplete."""
    end = _varint_end(buf, at)
    if end is None:
        return None
    value = 0
    for i, byte in enumerate(buf[at:end]):
        value |= (byte & 0x7F) << (7 * i)
    return value, end


class MqttClient(asyncio.Protocol):
    """One benchmark client socket.

    Set `on_publish(buf, payload_offsets, now_ns)` to receive PUBLISH payload
    headers, `on_complete(count)` to learn of finished QoS 1/2 publishes and
    `on_resume()` to hear that a paused socket takes writes again; `coalesce`
    to batch reads under load. `connack` and `suback` are futures resolved
    with the decoded packets (None if the connection closed first).
    """

    def __init__(self, client_id: str, endpoint: Endpoint) -> None:
        self.loop = loop = asyncio.get_running_loop()
        self.client_id = client_id
        self.endpoint = endpoint
        self.v5 = endpoint.version == 5
        self.acks = AckHeaders.for_version(endpoint.version)
        self.connack: asyncio.Future = loop.create_future()
        self.suback: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.coalesce = False
        self.on_publish = None
        self.on_complete = None
        self.on_resume = None
        self._rest: bytearray | None = None
        self._last_read = 0.0

    # -- packets off the hot path (codec) ----------------------------------------

    def subscribe(self, topic_filter: str, qos: int) -> None:
        packet = codec.Subscribe(1, subscriptions=(codec.Subscription(topic_filter, qos),),
                                 properties={})
        self.transport.write(codec.encode(packet, self.endpoint.version))

    def ping(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(codec.encode(codec.Pingreq(), self.endpoint.version))

    def disconnect(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(codec.encode(codec.Disconnect(), self.endpoint.version))
            self.transport.close()

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.endpoint.connect_packet(self.client_id))

    def connection_lost(self, exc) -> None:
        for future in (self.connack, self.suback, self.closed):
            if not future.done():
                future.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.on_resume is not None:
            self.on_resume()

    def data_received(self, data: bytes) -> None:
        if self._rest is not None:
            self._rest += data
            buf, self._rest = self._rest, None
        else:
            buf = data
        try:
            consumed = self._scan(buf)
        except ProtocolError:
            self.transport.close()
            return
        if consumed < len(buf):
            self._rest = bytearray(buf[consumed:])
        if self.coalesce:
            self._coalesce_reads()

    def _coalesce_reads(self) -> None:
        """Under load, let the kernel gather data for a moment before the next
        read: one wake-up per many packets instead of one per broker write.
        Reads more than COALESCE_AFTER apart (light traffic, latency runs)
        are never delayed. Only for QoS 0 receivers: a paused reader would
        also hold back a QoS 1/2 flow window."""
        now = time.monotonic()
        if now - self._last_read < COALESCE_AFTER:
            self.transport.pause_reading()
            self.loop.call_later(TIMER_TICK, self._resume_reading)
        self._last_read = now

    def _resume_reading(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def _scan(self, buf) -> int:
        """Handle every complete packet in `buf`; return the bytes consumed."""
        offsets: list[int] = []
        replies = bytearray()
        controls: list = []
        consumed, completed = scan(buf, self.v5, self.acks, offsets, replies, controls)
        for first, body in controls:
            self._control(first, body)
        if offsets and self.on_publish is not None:
            self.on_publish(buf, offsets, time.monotonic_ns())
        if replies:
            self.transport.write(replies)
        if completed and self.on_complete is not None:
            self.on_complete(completed)
        return consumed

    def _control(self, first: int, body: bytes) -> None:
        """A packet off the hot path: decoded by the codec."""
        packet = codec.decode_packet(first, body, self.endpoint.version)
        if isinstance(packet, codec.Connack) and not self.connack.done():
            self.connack.set_result(packet)
        elif isinstance(packet, codec.Suback) and not self.suback.done():
            self.suback.set_result(packet)
        elif isinstance(packet, codec.Disconnect):
            self.transport.close()


def scan(buf, v5: bool, acks: AckHeaders, offsets: list, replies: bytearray,
         controls: list) -> tuple[int, int]:
    """Split `buf` on fixed headers; return (bytes consumed, PUBACK + PUBCOMP count).

    Appends to `offsets` the payload offset of each PUBLISH with a full payload
    header, to `replies` the acknowledgements the packets call for (PUBACK or
    PUBREC for a PUBLISH, PUBREL for a PUBREC, PUBCOMP for a PUBREL), and to
    `controls` (first byte, body) of every other packet. Stops at the first
    incomplete packet.
    """
    n, pos = len(buf), 0
    completed = 0
    while n - pos >= 2:
        first, length, body = buf[pos], buf[pos + 1], pos + 2
        if length & 0x80:
            parsed = read_varint(buf, pos + 1)
            if parsed is None:
                break
            length, body = parsed
        end = body + length
        if end > n:
            break
        kind = first >> 4
        if kind == PUBLISH:
            at = body + 2 + ((buf[body] << 8) | buf[body + 1])
            if first & 0x06:
                replies += acks.pubrec if first & 0x04 else acks.puback
                replies += buf[at:at + 2]
                at += 2
            if v5:
                at = _skip_properties(buf, at)
            if end - at >= HEADER_SIZE:
                offsets.append(at)
        elif kind == PUBACK or kind == PUBCOMP:
            completed += 1
        elif kind == PUBREC or kind == PUBREL:
            replies += acks.pubrel if kind == PUBREC else acks.pubcomp
            replies += buf[body:body + 2]
        else:
            controls.append((first, bytes(buf[body:end])))
        pos = end
    return pos, completed


def _skip_properties(buf, at: int) -> int:
    length = buf[at]
    if length < 0x80:
        return at + 1 + length
    value, end = read_varint(buf, at)
    return end + value


async def open_client(client: MqttClient) -> MqttClient:
    """Connect `client` and wait for a successful CONNACK.

    Raises ConnectionError (refused, closed, timed out, or a failure reason code).
    """
    endpoint = client.endpoint
    try:
        await asyncio.wait_for(client.loop.create_connection(lambda: client, endpoint.host,
                                                              endpoint.port, ssl=endpoint.tls),
                               endpoint.connect_timeout)
        connack = await asyncio.wait_for(client.connack, endpoint.connect_timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        if client.transport is not None:
            client.transport.close()
        raise ConnectionError(f"{client.client_id}: {exc or 'timed out'}") from exc
    if connack is None or connack.reason_code >= 0x80:
        code = "closed" if connack is None else f"reason code 0x{connack.reason_code:02X}"
        client.transport.close()
        raise ConnectionError(f"{client.client_id}: CONNACK {code}")
    return client


async def subscribe(client: MqttClient, topic_filter: str, qos: int, timeout: float) -> None:
    """Subscribe and wait for the SUBACK; raise ConnectionError when refused."""
    client.subscribe(topic_filter, qos)
    try:
        suback = await asyncio.wait_for(client.suback, timeout)
    except asyncio.TimeoutError as exc:
        raise ConnectionError(f"{client.client_id}: no SUBACK") from exc
    if suback is None or any(code >= 0x80 for code in suback.reason_codes):
        raise ConnectionError(f"{client.client_id}: subscription to {topic_filter!r} refused")


def receive_maximum(connack) -> int:
    """The broker's MQTT 5 Receive Maximum (65535 when absent)."""
    props = getattr(connack, "properties", None) or {}
    return props.get("receive_maximum", MAX_PACKET_ID)
