"""A raw-socket MQTT client for the tests that need control over every packet.

`RawClient` writes packet values encoded by actormq's own codec
(`actormq.transport.codec.encode`), or arbitrary bytes, and reads the server's
packets back with a client-side `StreamDecoder` (and keeps the raw bytes in
`raw`, for tests that compare them with golden bytes). It never acknowledges,
retries or pings on its own: whatever the test does not send is not sent.
"""

from __future__ import annotations

import select
import socket
import time
import weakref
from collections import deque

from actormq.errors import ProtocolError
from actormq.transport.codec import (
    Connack, Connect, Disconnect, Pubcomp, Publish, Pubrec, Pubrel, StreamDecoder, Suback, Subscribe,
    Subscription, Will, encode,
)

HOST = "127.0.0.1"
TIMEOUT = 5.0
_OPEN: "weakref.WeakSet[RawClient]" = weakref.WeakSet()


class RawClient:
    """One TCP connection to the broker; see the module docstring."""

    __test__ = False  # not a pytest test class

    def __init__(self, port: int, version: int = 5, host: str = HOST) -> None:
        self.version = version
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = StreamDecoder()
        self.decoder.version = version
        self.received: deque = deque()
        self.raw = bytearray()      # every byte the server sent, for golden-byte checks
        self.eof = False
        _OPEN.add(self)

    @property
    def local_address(self) -> str:
        """host:port of this end, as the broker sees the peer."""
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    # -- sending -----------------------------------------------------------

    def send(self, *packets) -> None:
        self.send_bytes(b"".join(encode(packet, self.version) for packet in packets))

    def send_bytes(self, data: bytes) -> None:
        """Write bytes; a connection the server already closed is not an error here
        (the test asserts the close itself)."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.eof = True

    def connect(self, client_id: str, clean_start: bool = True, keepalive: int = 60,
                properties: dict | None = None, will: Will | None = None,
                protocol_level: int | None = None, check: bool = True, **fields) -> Connack | None:
        """Send CONNECT and return the CONNACK (None when the server just closed)."""
        self.send(Connect(client_id, protocol_level=protocol_level or self.version,
                          clean_start=clean_start, keepalive=keepalive, will=will,
                          properties=dict(properties or {}), **fields))
        connack = self.recv()
        if check:
            assert isinstance(connack, Connack), f"expected CONNACK, got {connack}"
            assert connack.reason_code == 0, f"connection refused: {connack}"
        return connack

    def subscribe(self, topic_filter: str, qos: int = 0, packet_id: int = 1,
                  properties: dict | None = None, **options) -> Suback:
        self.send(Subscribe(packet_id, (Subscription(topic_filter, qos, **options),),
                            dict(properties or {})))
        return self.expect(Suback)

    def publish_qos2(self, topic: str, payload: bytes, packet_id: int,
                     duplicate: bool = False) -> None:
        """A QoS 2 PUBLISH to its PUBCOMP; with `duplicate`, sent again (DUP set) after
        its PUBREC, before the PUBREL."""
        self.send(Publish(topic, payload, qos=2, packet_id=packet_id))
        assert self.expect(Pubrec).packet_id == packet_id
        if duplicate:
            self.send(Publish(topic, payload, qos=2, packet_id=packet_id, dup=True))
            assert self.expect(Pubrec).packet_id == packet_id
        self.send(Pubrel(packet_id))
        assert self.expect(Pubcomp).packet_id == packet_id

    def disconnect(self, reason_code: int = 0) -> None:
        self.send(Disconnect(reason_code))
        self.close()

    # -- receiving ---------------------------------------------------------

    def _fill(self, timeout: float) -> bool:
        """Read once; False on timeout. Sets eof when the server closed."""
        if self.eof:
            return True
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not ready:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, OSError):
            data = b""
        if not data:
            self.eof = True
            return True
        self.raw += data
        try:
            self.received.extend(self.decoder.feed(data))
        except ProtocolError as error:
            raise AssertionError(f"the server sent bytes we cannot decode: {error}") from None
        return True

    def poll(self, timeout: float = TIMEOUT):
        """The next packet, None when the connection is closed, "timeout" otherwise."""
        deadline = time.monotonic() + timeout
        while not self.received:
            if self.eof:
                return None
            if not self._fill(deadline - time.monotonic()) and time.monotonic() >= deadline:
                return "timeout"
        return self.received.popleft()

    def recv(self, timeout: float = TIMEOUT):
        """The next packet, or None when the server closed the connection."""
        packet = self.poll(timeout)
        assert packet != "timeout", f"no packet from the server within {timeout}s"
        return packet

    def expect(self, packet_class, timeout: float = TIMEOUT):
        packet = self.recv(timeout)
        assert isinstance(packet, packet_class), f"expected {packet_class.__name__}, got {packet}"
        return packet

    def expect_publishes(self, n: int, timeout: float = TIMEOUT) -> list[Publish]:
        return [self.expect(Publish, timeout) for _ in range(n)]

    def expect_nothing(self, timeout: float = 0.5) -> None:
        """No packet arrives and the connection stays open."""
        packet = self.poll(timeout)
        assert packet == "timeout", f"expected silence, got {packet or 'a closed connection'}"

    def expect_closed(self, timeout: float = TIMEOUT) -> list:
        """Wait for the server to close; return the packets it sent before."""
        packets = []
        deadline = time.monotonic() + timeout
        while True:
            packet = self.poll(deadline - time.monotonic())
            assert packet != "timeout", \
                f"connection still open after {timeout}s (received {packets})"
            if packet is None:
                return packets
            packets.append(packet)

    def expect_disconnect(self, reason_code: int | None, timeout: float = TIMEOUT) -> Disconnect | None:
        """The server sends DISCONNECT with reason_code, then closes
        (reason_code None: it closes without sending DISCONNECT)."""
        packets = self.expect_closed(timeout)
        disconnects = [p for p in packets if isinstance(p, Disconnect)]
        if reason_code is None:
            assert not disconnects, f"unexpected {disconnects}"
            return None
        assert disconnects, f"closed without DISCONNECT (received {packets})"
        assert disconnects[-1].reason_code == reason_code, \
            f"DISCONNECT 0x{disconnects[-1].reason_code:02X}, expected 0x{reason_code:02X}"
        return disconnects[-1]

    def close(self) -> None:
        self.sock.close()
        self.eof = True
        _OPEN.discard(self)


def close_all() -> None:
    """Close every raw connection a test left open."""
    for client in list(_OPEN):
        client.close()
