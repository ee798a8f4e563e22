"""`RawConnector`: many bare MQTT connections (CONNECT, CONNACK, then held) on
non-blocking sockets and one epoll, without asyncio transports, so that a
connection costs the benchmark a fraction of what it costs through asyncio."""

from __future__ import annotations

import errno
import select
import socket
import ssl
import time
from dataclasses import dataclass

from actormq.bench.client import Endpoint, read_varint
from actormq.bench.stats import LatencyHistogram
from actormq.errors import ProtocolError
from actormq.transport import codec

CONNACK_ACCEPTED_V311 = b"\x20\x02\x00\x00"   # no session present


@dataclass(slots=True)
class _Pending:
    sock: socket.socket
    connect: bytes
    started_ns: int
    received: bytes = b""
    handshaking: bool = False       # TLS: the handshake comes before the CONNECT


class RawConnector:
    """Opens connections `concurrency` at a time until each got its CONNACK
    (over TLS when the endpoint has a context: the handshake is part of the
    connection's time).

    Blocking: run it in a thread. `opened` (connected sockets) grows as it goes;
    `errors` says what failed; `connect_ns` holds CONNECT-to-CONNACK times.
    """

    def __init__(self, endpoint: Endpoint, client_ids, concurrency: int) -> None:
        self.endpoint = endpoint
        self.client_ids = iter(client_ids)
        self.concurrency = concurrency
        self.opened: list[socket.socket] = []
        self.errors: list[str] = []
        self.connect_ns = LatencyHistogram()
        self.first_start_ns = 0
        self.last_connack_ns = 0
        self._poll = select.epoll()
        self._pending: dict[int, _Pending] = {}
        self._address = (endpoint.host, endpoint.port)

    def run(self) -> None:
        try:
            for _ in range(self.concurrency):
                self._start_next()
            while self._pending:
                events = self._poll.poll(0.05)
                for fd, event in events:
                    self._handle(fd, event)
                self._expire()
        finally:
            self._poll.close()

    def _start_next(self) -> None:
        client_id = next(self.client_ids, None)
        if client_id is None:
            return
        connect = self.endpoint.connect_packet(client_id)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.endpoint.source is not None:
            try:
                sock.bind((self.endpoint.source, 0))
            except OSError as exc:
                sock.close()
                self.errors.append(f"{client_id}: cannot bind {self.endpoint.source}: {exc.strerror}")
                return self._start_next()
        started = time.monotonic_ns()
        self.first_start_ns = self.first_start_ns or started
        code = sock.connect_ex(self._address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.errors.append(f"{client_id}: {errno.errorcode.get(code, code)}")
            return self._start_next()
        fd = sock.fileno()
        pending = self._pending[fd] = _Pending(sock, connect, started)
        if self.endpoint.tls is not None:
            pending.handshaking = True
            self._poll.register(fd, select.EPOLLOUT)
            return
        # on loopback the handshake is usually done already: write the CONNECT
        # now and wait for the CONNACK, one wake-up per connection
        try:
            sock.send(connect)
            pending.connect = b""
            self._poll.register(fd, select.EPOLLIN)
        except (BlockingIOError, OSError):
            self._poll.register(fd, select.EPOLLOUT)

    def _handle(self, fd: int, event: int) -> None:
        pending = self._pending[fd]
        try:
            if pending.handshaking and not self._handshake(fd, pending):
                return
            if pending.connect:
                pending.sock.send(pending.connect)
                pending.connect = b""
                self._poll.modify(fd, select.EPOLLIN)
                return
            try:
                chunk = pending.sock.recv(512)
            except ssl.SSLWantReadError:
                return
            if not chunk:
                raise ConnectionError("closed before CONNACK")
            pending.received += chunk
            if pending.received == CONNACK_ACCEPTED_V311:
                connack = None
            else:
                connack = _complete_connack(pending.received, self.endpoint.version)
                if connack is None:
                    return
        except (OSError, ProtocolError) as exc:
            return self._fail(fd, str(exc))
        if connack is not None and connack.reason_code >= 0x80:
            return self._fail(fd, f"CONNACK reason code 0x{connack.reason_code:02X}")
        self._poll.unregister(fd)
        del self._pending[fd]
        self.last_connack_ns = time.monotonic_ns()
        self.connect_ns.record(self.last_connack_ns - pending.started_ns)
        self.opened.append(pending.sock)
        self._start_next()

    def _handshake(self, fd: int, pending: _Pending) -> bool:
        """Go on with the TLS handshake of a connected socket; True once done."""
        if not isinstance(pending.sock, ssl.SSLSocket):    # the TCP connection is up
            pending.sock = self.endpoint.tls.wrap_socket(
                pending.sock, server_hostname=self.endpoint.host, do_handshake_on_connect=False)
        try:
            pending.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._poll.modify(fd, select.EPOLLIN)
            return False
        except ssl.SSLWantWriteError:
            self._poll.modify(fd, select.EPOLLOUT)
            return False
        pending.handshaking = False
        return True

    def _fail(self, fd: int, why: str) -> None:
        self._poll.unregister(fd)
        self._pending.pop(fd).sock.close()
        self.errors.append(why)
        self._start_next()

    def _expire(self) -> None:
        limit = time.monotonic_ns() - int(self.endpoint.connect_timeout * 1e9)
        for fd in [fd for fd, p in self._pending.items() if p.started_ns < limit]:
            self._fail(fd, "timed out")

    def _send_all(self, packet) -> None:
        data = codec.encode(packet, self.endpoint.version)
        for sock in self.opened:
            try:
                sock.send(data)
            except OSError:
                pass

    def ping(self) -> None:
        self._send_all(codec.Pingreq())

    def close(self) -> None:
        self._send_all(codec.Disconnect())
        for sock in self.opened:
            sock.close()


def _complete_connack(data: bytes, version: int):
    """The CONNACK at the start of `data`, None while it is incomplete."""
    parsed = read_varint(data, 1) if len(data) >= 2 else None
    if parsed is None or len(data) < parsed[1] + parsed[0]:
        return None
    length, body = parsed
    packet = codec.decode_packet(data[0], data[body:body + length], version)
    if not isinstance(packet, codec.Connack):
        raise ProtocolError(0x82, f"expected CONNACK, got {type(packet).__name__}")
    return packet
