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
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass

from actormq.bench.report import Progress, Summary, cpu_seconds, latency_summary
from actormq.bench.stats import HEADER_SIZE, DeliveryCounts, LatencyHistogram, SequenceTracker
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


def _varint(buf, at: int) -> tuple[int, int] | None:
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
    headers and `on_complete(count)` to learn of finished QoS 1/2 publishes.
    `connack` and `suback` are futures resolved with the decoded packets.
    """

    def __init__(self, client_id: str, endpoint: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        self.client_id = client_id
        self.endpoint = endpoint
        self.v5 = endpoint.version == 5
        self.acks = AckHeaders.for_version(endpoint.version)
        self.connack: asyncio.Future = loop.create_future()
        self.suback: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.on_publish = None
        self.on_complete = None
        self.on_resume = None
        self._rest: bytearray | None = None
        self.loop = loop
        self._last_read = 0.0
        self.coalesce = False

    # -- set-up packets (codec, not hot) ---------------------------------------

    def connect_packet(self) -> bytes:
        ep = self.endpoint
        props = {}
        if self.v5 and ep.session_expiry is not None:
            props["session_expiry_interval"] = ep.session_expiry
        return codec.encode(codec.Connect(client_id=self.client_id, protocol_level=ep.version,
                                          clean_start=ep.clean_start, keepalive=ep.keepalive,
                                          properties=props), ep.version)

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
        transport.write(self.connect_packet())

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
        n, pos, v5 = len(buf), 0, self.v5
        offsets: list[int] = []
        replies = bytearray()
        completed = 0
        acks = self.acks
        while n - pos >= 2:
            first, length, body = buf[pos], buf[pos + 1], pos + 2
            if length & 0x80:
                parsed = _varint(buf, pos + 1)
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
                self._control(first, bytes(buf[body:end]))
            pos = end
        if offsets and self.on_publish is not None:
            self.on_publish(buf, offsets, time.monotonic_ns())
        if replies:
            self.transport.write(replies)
        if completed and self.on_complete is not None:
            self.on_complete(completed)
        return pos

    def _control(self, first: int, body: bytes) -> None:
        """A packet off the hot path: decoded by the codec."""
        packet = codec.decode_packet(first, body, self.endpoint.version)
        if isinstance(packet, codec.Connack) and not self.connack.done():
            self.connack.set_result(packet)
        elif isinstance(packet, codec.Suback) and not self.suback.done():
            self.suback.set_result(packet)
        elif isinstance(packet, codec.Disconnect):
            self.transport.close()


def _skip_properties(buf, at: int) -> int:
    length = buf[at]
    if length < 0x80:
        return at + 1 + length
    value, end = _varint(buf, at)
    return end + value


async def open_client(client: MqttClient) -> MqttClient:
    """Connect `client` and wait for a successful CONNACK.

    Raises ConnectionError (refused, closed, timed out, or a failure reason code).
    """
    endpoint = client.endpoint
    try:
        await asyncio.wait_for(client.loop.create_connection(lambda: client, endpoint.host,
                                                              endpoint.port),
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


# -- workloads -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    """What one `actormq bench` command does.

    `per_second` is the message rate of each publishing client (None: as fast
    as the socket and the QoS 1/2 window allow). `limit` caps the messages of
    each publisher; `count` stops a subscriber run once that many arrived
    (0: right after SUBACK); `idle` stops it after that many seconds without
    a message once one arrived.
    """

    clients: int = 1
    start_number: int = 0
    prefix: str = "bench"
    topic: str = "bench/%i"
    qos: int = 0
    size: int = 64
    per_second: float | None = None
    duration: float = 10.0
    window: int = 100
    limit: int = 0
    count: int | None = None
    idle: float | None = None
    concurrency: int = 50
    grace: float = 10.0
    ready_file: str | None = None
    progress: bool = True

    def indexes(self) -> range:
        return range(self.start_number + 1, self.start_number + self.clients + 1)

    def client_id(self, index: int) -> str:
        return f"{self.prefix}{index}"

    def topic_for(self, index: int) -> str:
        return self.topic.replace("%i", str(index)).replace("%c", self.client_id(index))


class Publisher:
    """Paces one client's PUBLISH stream: rate, QoS 1/2 window, limit, write pauses."""

    BATCH = 64

    def __init__(self, client: MqttClient, template: PublishTemplate, index: int,
                 work: Workload, window: int) -> None:
        self.client = client
        self.template = template
        self.index = index
        self.per_second = work.per_second
        self.window = window if work.qos else 0
        self.limit = work.limit
        self.sent = 0
        self.completed = 0
        self.loop = asyncio.get_running_loop()
        self.done_sending: asyncio.Future = self.loop.create_future()
        self._started = 0.0
        self._armed = False
        client.on_complete = self._on_complete
        client.on_resume = self._wake

    def start(self, at: float) -> None:
        self._started = at
        self._pump()

    def stop(self) -> None:
        if not self.done_sending.done():
            self.done_sending.set_result(self.loop.time())

    def _on_complete(self, count: int) -> None:
        self.completed += count
        self._wake()

    def _wake(self) -> None:
        if not self._armed:
            self._pump()

    def _pump(self) -> None:
        self._armed = False
        transport = self.client.transport
        if self.done_sending.done() or self.client.paused or transport.is_closing():
            return
        budget = self.BATCH
        if self.window:
            budget = min(budget, self.window - (self.sent - self.completed))
        if self.limit:
            budget = min(budget, self.limit - self.sent)
        if self.per_second:
            due = int((self.loop.time() - self._started) * self.per_second) + 1 - self.sent
            budget = min(budget, due)
        if budget > 0:
            transport.write(self.template.render(self.index, self.sent, budget,
                                                 time.monotonic_ns()))
            self.sent += budget
        if self.limit and self.sent >= self.limit:
            self.stop()
        else:
            self._schedule()

    def _schedule(self) -> None:
        if self.client.paused or (self.window and self.sent - self.completed >= self.window):
            return
        self._armed = True
        if self.per_second:
            # event loop timers tick in whole milliseconds: an earlier wake-up
            # would find nothing due and spin
            due_at = self._started + self.sent / self.per_second
            self.loop.call_at(max(due_at, self.loop.time() + TIMER_TICK), self._pump)
        else:
            self.loop.call_soon(self._pump)


@dataclass(slots=True)
class Fleet:
    """The clients of a run that connected, and what went wrong for the others."""

    clients: dict
    errors: list
    connect_ns: LatencyHistogram
    first_start_ns: int = 0
    last_connack_ns: int = 0

    def connect_rate(self) -> float | None:
        span = self.last_connack_ns - self.first_start_ns
        return len(self.clients) / span * 1e9 if self.clients and span > 0 else None


async def connect_all(work: Workload, endpoint: Endpoint, fleet: Fleet | None = None,
                      prepare=None) -> Fleet:
    """Connect every client of `work`, at most `work.concurrency` at a time,
    into `fleet` (a new one by default; pass one to watch it grow).
    `prepare(index, client)` runs before a client connects (to set callbacks
    that must see the first packets)."""
    fleet = fleet if fleet is not None else Fleet({}, [], LatencyHistogram())
    pending = iter(work.indexes())

    async def worker() -> None:
        for index in pending:
            started = time.monotonic_ns()
            fleet.first_start_ns = fleet.first_start_ns or started
            client = MqttClient(work.client_id(index), endpoint)
            if prepare is not None:
                prepare(index, client)
            try:
                await open_client(client)
            except ConnectionError as exc:
                fleet.errors.append(str(exc))
                continue
            fleet.last_connack_ns = time.monotonic_ns()
            fleet.connect_ns.record(fleet.last_connack_ns - started)
            fleet.clients[index] = client

    await asyncio.gather(*(worker() for _ in range(max(1, min(work.concurrency,
                                                                work.clients)))))
    return fleet


async def _keepalive(clients, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for client in clients:
            client.ping()


async def _disconnect(clients) -> None:
    for client in clients:
        client.disconnect()
    if clients:
        await asyncio.wait([c.closed for c in clients], timeout=2.0)


async def _with_progress(progress: Progress | None, keepalive: tuple, body):
    tasks = [asyncio.ensure_future(_keepalive(*keepalive))]
    if progress is not None:
        tasks.append(asyncio.ensure_future(progress.run()))
    try:
        return await body
    finally:
        for task in tasks:
            task.cancel()


def _summary(command: str, work: Workload, endpoint: Endpoint, fleet: Fleet,
             cpu_start: float, **fields) -> Summary:
    return Summary(command=command, clients=work.clients, connected=len(fleet.clients),
                   version=endpoint.version, qos=work.qos, size=work.size,
                   connect_ms=latency_summary(fleet.connect_ns, 1_000_000),
                   cpu_s=round(cpu_seconds() - cpu_start, 3), errors=fleet.errors[:20],
                   **fields)


async def run_pub(work: Workload, endpoint: Endpoint) -> Summary:
    """Publish from every client for `work.duration` (or up to `work.limit`)."""
    cpu_start = cpu_seconds()
    fleet = await connect_all(work, endpoint)
    loop = asyncio.get_running_loop()
    publishers = [Publisher(client, PublishTemplate(work.topic_for(index), work.size, work.qos,
                                                    endpoint.version), index, work,
                            min(work.window, receive_maximum(client.connack.result())))
                  for index, client in fleet.clients.items()]
    sent = lambda: sum(p.sent for p in publishers)  # noqa: E731
    counters = (lambda: {"sent": sent(), "completed": sum(p.completed for p in publishers)}) \
        if work.qos else (lambda: {"sent": sent()})
    progress = Progress("pub", counters) if work.progress else None

    async def body() -> float:
        started = loop.time()
        for publisher in publishers:
            publisher.start(started)
        if publishers:
            await asyncio.wait([p.done_sending for p in publishers], timeout=work.duration)
        for publisher in publishers:
            publisher.stop()
        elapsed = max((p.done_sending.result() for p in publishers), default=started) - started
        await _settle(lambda: all(p.completed >= p.sent for p in publishers) or not work.qos,
                      work.grace)
        return elapsed

    elapsed = await _with_progress(progress, (fleet.clients.values(), endpoint.keepalive / 2),
                                   body())
    await _disconnect(list(fleet.clients.values()))
    total = sent()
    return _summary("pub", work, endpoint, fleet, cpu_start, elapsed_s=round(elapsed, 3),
                    rate=total / elapsed if elapsed > 0 else None, sent=total,
                    completed=sum(p.completed for p in publishers))


async def _settle(condition, timeout: float, step: float = 0.02) -> bool:
    """Wait until `condition()` holds or `timeout` passes; return whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(step)
    return True


async def run_sub(work: Workload, endpoint: Endpoint) -> Summary:
    """Subscribe every client, then count what arrives until duration, count or idle."""
    cpu_start = cpu_seconds()
    connect_started = time.monotonic_ns()
    histogram = LatencyHistogram()
    trackers: dict[int, SequenceTracker] = {}

    def prepare(index: int, client: MqttClient) -> None:
        trackers[index] = SequenceTracker(histogram)
        client.on_publish = trackers[index].observe
        client.coalesce = work.qos == 0

    fleet = await connect_all(work, endpoint, prepare=prepare)
    for index, client in list(fleet.clients.items()):
        try:
            await subscribe(client, work.topic_for(index), work.qos, endpoint.connect_timeout)
        except ConnectionError as exc:
            fleet.errors.append(str(exc))
    trackers = [trackers[index] for index in fleet.clients]
    if work.ready_file:
        with open(work.ready_file, "w") as ready:
            ready.write(f"{len(trackers)}\n")
    received = lambda: sum(t.received for t in trackers)  # noqa: E731
    progress = Progress("sub", lambda: {"received": received()}) if work.progress else None
    await _with_progress(progress, (fleet.clients.values(), endpoint.keepalive / 2),
                         _await_traffic(work, received))
    await _disconnect(list(fleet.clients.values()))
    counts = sum((t.counts() for t in trackers), DeliveryCounts())
    first = min((t.first_ns for t in trackers if t.first_ns), default=0)
    last = max((t.last_ns for t in trackers), default=0)
    span = (last - first) / 1e9
    return _summary("sub", work, endpoint, fleet, cpu_start, elapsed_s=round(span, 3),
                    rate=counts.received / span if span > 0 else None,
                    received=counts.received, duplicates=counts.duplicates,
                    missing=counts.missing, latency_us=latency_summary(histogram),
                    connect_to_last_s=round((last - connect_started) / 1e9, 4) if last else None)


async def _await_traffic(work: Workload, received) -> None:
    """Return at the duration, at `work.count` messages, or after `work.idle` quiet seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + work.duration
    last_total, last_change = 0, loop.time()
    while loop.time() < deadline:
        total = received()
        if work.count is not None and total >= work.count:
            return
        now = loop.time()
        if total != last_total:
            last_total, last_change = total, now
        elif work.idle and total and now - last_change >= work.idle:
            return
        await asyncio.sleep(0.01 if work.count else 0.05)


async def run_conn(work: Workload, endpoint: Endpoint) -> Summary:
    """Open every connection, hold them for `work.duration`, then disconnect."""
    cpu_start = cpu_seconds()
    fleet = Fleet({}, [], LatencyHistogram())
    progress = Progress("conn", lambda: {"connected": len(fleet.clients)}) \
        if work.progress else None
    await _with_progress(progress, ((), endpoint.keepalive / 2), connect_all(work, endpoint, fleet))
    span = (fleet.last_connack_ns - fleet.first_start_ns) / 1e9
    if work.ready_file:
        with open(work.ready_file, "w") as ready:
            ready.write(f"{len(fleet.clients)}\n")
    await _with_progress(None, (fleet.clients.values(), endpoint.keepalive / 2),
                         asyncio.sleep(work.duration))
    await _disconnect(list(fleet.clients.values()))
    return _summary("conn", work, endpoint, fleet, cpu_start, elapsed_s=round(span, 3),
                    rate=fleet.connect_rate())
