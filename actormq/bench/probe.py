"""`actormq bench latency`: a lean one-way latency probe, publisher and
subscriber each in a process of its own.

The asyncio engine of `bench pub|sub` is built for throughput; between a
socket becoming readable and the time it notes sit the event loop's poll,
its callbacks and timers, which on a loaded machine add more than a fast
broker takes. The probe keeps its own share small:

- blocking sockets with TCP_NODELAY, no event loop, no threads; the
  cycle collector is off in both processes (their objects are made once);
- the publisher sleeps until a message is due (`clock_nanosleep` on
  CLOCK_MONOTONIC through `time.sleep`: no busy wait), reads the broker's
  acknowledgements without blocking, stamps the pre-encoded PUBLISH in place
  with `time.monotonic_ns()` and sends it: the stamp is the last thing
  before `send()`;
- the subscriber blocks in `recv()` and takes its clock as the first thing
  after it, then answers and accounts every message of that read.

What it measures is therefore the time from the publisher's `send()` to the
subscriber's `recv()` returning: both kernels' loopback paths, the broker,
and the two wake-ups of the probe processes. Payloads carry the header of
`actormq.bench.stats` (publisher index, sequence, send time), so the delivery
check (loss, duplicates) and the histogram are those of `bench sub`.

With `series` set the subscriber also writes every message's sequence number,
send time and receive time (CSV, monotonic nanoseconds), to see when the slow
messages came rather than only how many there were.
"""

from __future__ import annotations

import array
import gc
import multiprocessing
import socket
import struct
import time
from dataclasses import dataclass

from actormq.bench.client import AckHeaders, Endpoint, PublishTemplate, scan
from actormq.bench.report import Summary, latency_summary
from actormq.bench.stats import HEADER, LatencyHistogram, SequenceTracker
from actormq.transport import codec

READ_SIZE = 65536
POLL_S = 0.05                   # a blocked read gives up this often to look at the clock
PUBLISHER_INDEX = 1


@dataclass(frozen=True, slots=True)
class Probe:
    """One latency run: `rate` messages per second of `size` bytes for `duration` s."""

    topic: str = "latency/1"
    qos: int = 1
    size: int = 64
    rate: float = 2000.0
    duration: float = 5.0
    grace: float = 5.0          # s to wait for what is still on its way once sending ends
    window: int = 1000          # QoS 1/2 messages in flight before the publisher waits
    prefix: str = "latency-"
    sub_port: int | None = None  # the subscriber's port (default: the endpoint's)
    series: str | None = None   # a file for every message's seq, send and receive time

    def interval_ns(self) -> int:
        return round(1e9 / self.rate)

    def messages(self) -> int:
        return max(1, int(self.duration * self.rate))


def due_ns(start_ns: int, seq: int, interval_ns: int) -> int:
    """When message `seq` is due: a fixed schedule from the start, so a late
    message does not push back the ones after it."""
    return start_ns + seq * interval_ns


def receive_timeout(sock: socket.socket, seconds: float) -> None:
    """Let a blocking `recv` give up after `seconds` (SO_RCVTIMEO: one system
    call per read, where `settimeout` adds a poll before each)."""
    whole = int(seconds)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                    struct.pack("ll", whole, int((seconds - whole) * 1e6)))


class Channel:
    """One blocking MQTT connection of the probe."""

    def __init__(self, endpoint: Endpoint, port: int, client_id: str) -> None:
        self.endpoint = endpoint
        self.v5 = endpoint.version == 5
        self.acks = AckHeaders.for_version(endpoint.version)
        self.sock = socket.create_connection((endpoint.host, port), endpoint.connect_timeout)
        self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        receive_timeout(self.sock, POLL_S)
        self.rest = b""
        self.sock.sendall(endpoint.connect_packet(client_id))
        connack = self.expect(codec.Connack)
        if connack.reason_code >= 0x80:
            raise ConnectionError(f"{client_id}: CONNACK reason code 0x{connack.reason_code:02X}")

    def expect(self, packet_class):
        """Read until a packet of `packet_class` arrives (set-up only)."""
        deadline = time.monotonic() + self.endpoint.connect_timeout
        while time.monotonic() < deadline:
            data = self.read()
            if data is None:
                continue
            controls: list = []
            self.take(data, [], bytearray(), controls)
            for first, body in controls:
                packet = codec.decode_packet(first, body, self.endpoint.version)
                if isinstance(packet, packet_class):
                    return packet
        raise ConnectionError(f"no {packet_class.__name__} from the broker")

    def read(self, flags: int = 0) -> bytes | None:
        """One read: its bytes, or None when nothing came (timeout, non-blocking)."""
        try:
            data = self.sock.recv(READ_SIZE, flags)
        except (BlockingIOError, TimeoutError):
            return None
        if not data:
            raise ConnectionError("the broker closed the connection")
        return data

    def take(self, data: bytes, offsets: list, replies: bytearray, controls: list) -> tuple:
        """(buffer, completed) of a read, joined to what an earlier read left."""
        buf = self.rest + data if self.rest else data
        consumed, completed = scan(buf, self.v5, self.acks, offsets, replies, controls)
        self.rest = buf[consumed:]
        return buf, completed

    def close(self) -> None:
        try:
            self.sock.sendall(codec.encode(codec.Disconnect(), self.endpoint.version))
        except OSError:
            pass
        self.sock.close()


def subscribe(channel: Channel, topic: str, qos: int) -> None:
    channel.sock.sendall(codec.encode(codec.Subscribe(1, (codec.Subscription(topic, qos),), {}),
                                      channel.endpoint.version))
    suback = channel.expect(codec.Suback)
    if any(code >= 0x80 for code in suback.reason_codes):
        raise ConnectionError(f"subscription to {topic!r} refused")


def subscriber(endpoint: Endpoint, probe: Probe, ready, sent_total, report) -> None:
    """The subscriber process: timestamps every read, answers, accounts."""
    gc.disable()
    try:
        channel = Channel(endpoint, probe.sub_port or endpoint.port, probe.prefix + "sub")
        subscribe(channel, probe.topic, probe.qos)
    except (OSError, ConnectionError) as exc:
        ready.send(str(exc))
        return
    ready.send("ready")
    histogram = LatencyHistogram()
    tracker = SequenceTracker(histogram)
    recv, clock, sendall = channel.sock.recv, time.monotonic_ns, channel.sock.sendall
    series = array.array("Q") if probe.series else None
    done_at = None
    started_cpu = time.process_time()
    try:
        while True:
            try:
                data = recv(READ_SIZE)
                now = clock()
            except (BlockingIOError, TimeoutError):
                data = None
            if data:
                offsets: list[int] = []
                replies = bytearray()
                buf, _ = channel.take(data, offsets, replies, [])
                if replies:
                    sendall(replies)
                if offsets:
                    tracker.observe(buf, offsets, now)
                    if series is not None:
                        note_series(series, buf, offsets, now)
            elif data is not None:
                raise ConnectionError("the broker closed the connection")
            target = sent_total.value
            if target >= 0:
                done_at = done_at or time.monotonic()
                if tracker.received - tracker.duplicates >= target \
                        or time.monotonic() - done_at > probe.grace:
                    break
    except (OSError, ConnectionError) as exc:
        report.send({"error": str(exc)})
        return
    cpu = time.process_time() - started_cpu
    channel.close()
    if series is not None:
        write_series(probe.series, series)
    counts = tracker.counts({PUBLISHER_INDEX: max(0, sent_total.value)})
    report.send({"received": counts.received, "duplicates": counts.duplicates,
                 "missing": counts.missing, "counts": histogram.counts, "cpu_s": cpu,
                 "first_ns": tracker.first_ns, "last_ns": tracker.last_ns})


def note_series(series: array.array, buf, offsets: list[int], now_ns: int) -> None:
    """Append (sequence, send time, receive time) of each message of a read."""
    for offset in offsets:
        _, seq, sent_ns = HEADER.unpack_from(buf, offset)
        series.extend((seq, sent_ns, now_ns))


def write_series(path: str, series: array.array) -> None:
    """The series as CSV: `seq,send_ns,recv_ns`, one message a line."""
    with open(path, "w") as out:
        out.write("seq,send_ns,recv_ns\n")
        out.writelines(f"{series[i]},{series[i + 1]},{series[i + 2]}\n"
                       for i in range(0, len(series), 3))


def publisher(endpoint: Endpoint, probe: Probe, sent_total, report) -> None:
    """The publisher process: one message when it is due, stamped just before send()."""
    gc.disable()
    sent = completed = 0
    try:
        channel = Channel(endpoint, endpoint.port, probe.prefix + "pub")
        template = PublishTemplate(probe.topic, probe.size, probe.qos, endpoint.version)
        packet = template.blank()
        stamp, send, clock = template.stamp, channel.sock.sendall, time.monotonic_ns
        interval, total = probe.interval_ns(), probe.messages()
        started_cpu = time.process_time()
        start = clock() + interval
        for seq in range(total):
            wait = due_ns(start, seq, interval) - clock()
            if wait > 0:
                time.sleep(wait / 1e9)
            completed += _acknowledge(channel, socket.MSG_DONTWAIT)
            while probe.qos and sent - completed >= probe.window:
                completed += _acknowledge(channel, 0)
            stamp(packet, PUBLISHER_INDEX, seq, clock())
            send(packet)
            sent += 1
        deadline = time.monotonic() + probe.grace
        while probe.qos and completed < sent and time.monotonic() < deadline:
            completed += _acknowledge(channel, 0)
        cpu = time.process_time() - started_cpu
        channel.close()
    except (OSError, ConnectionError) as exc:
        report.send({"error": str(exc), "sent": sent})
        return
    finally:
        sent_total.value = sent
    report.send({"sent": sent, "completed": completed, "cpu_s": cpu})


def _acknowledge(channel: Channel, flags: int) -> int:
    """Read what the broker sent the publisher (one read), answer it; the
    count of QoS 1/2 publishes it completed."""
    data = channel.read(flags)
    if data is None:
        return 0
    replies = bytearray()
    _, completed = channel.take(data, [], replies, [])
    if replies:
        channel.sock.sendall(replies)
    return completed


def run_latency(endpoint: Endpoint, probe: Probe) -> Summary:
    """Start the subscriber, once it is subscribed the publisher; their summary."""
    context = multiprocessing.get_context("fork")
    sent_total = context.Value("q", -1, lock=False)
    ready_out, ready_in = context.Pipe(duplex=False)
    sub_out, sub_in = context.Pipe(duplex=False)
    pub_out, pub_in = context.Pipe(duplex=False)
    sub = context.Process(target=subscriber, args=(endpoint, probe, ready_in, sent_total, sub_in),
                          name="latency-sub", daemon=True)
    sub.start()
    errors: list[str] = []
    pub_result: dict = {}
    sub_result: dict = {}
    if not ready_out.poll(endpoint.connect_timeout + 5):
        errors.append("the subscriber did not subscribe in time")
    elif (state := ready_out.recv()) != "ready":
        errors.append(f"subscriber: {state}")
    else:
        pub = context.Process(target=publisher, args=(endpoint, probe, sent_total, pub_in),
                              name="latency-pub", daemon=True)
        pub.start()
        pub_result = _receive(pub_out, probe.duration + probe.grace + 30, "publisher", errors) or {}
        sub_result = _receive(sub_out, probe.grace + 30, "subscriber", errors) or {}
        pub.join(5)
    sub.join(5)
    if sub.is_alive():
        sub.kill()
    return _summary(endpoint, probe, pub_result, sub_result, errors)


def _receive(pipe, timeout: float, who: str, errors: list) -> dict | None:
    if not pipe.poll(timeout):
        errors.append(f"{who}: no result in {timeout:.0f} s")
        return None
    result = pipe.recv()
    if "error" in result:
        errors.append(f"{who}: {result['error']}")
    return result


def _summary(endpoint: Endpoint, probe: Probe, pub: dict, sub: dict, errors: list) -> Summary:
    histogram = LatencyHistogram()
    if "counts" in sub:
        histogram.counts = sub["counts"]
    span = (sub.get("last_ns", 0) - sub.get("first_ns", 0)) / 1e9
    connected = (1 if "received" in sub else 0) + (1 if "completed" in pub else 0)
    return Summary(command="latency", clients=2, connected=connected, version=endpoint.version,
                   qos=probe.qos, size=probe.size, elapsed_s=round(span, 3),
                   rate=sub.get("received", 0) / span if span > 0 else None,
                   sent=pub.get("sent", 0), completed=pub.get("completed", 0),
                   received=sub.get("received", 0), duplicates=sub.get("duplicates", 0),
                   missing=sub.get("missing", 0), latency_us=latency_summary(histogram),
                   cpu_s=round(pub.get("cpu_s", 0.0) + sub.get("cpu_s", 0.0), 3),
                   errors=errors)
