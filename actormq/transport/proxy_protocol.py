"""The PROXY protocol (v1 text and v2 binary, as HAProxy, AWS NLB and nginx
send it) in front of a listener: the header's client address becomes the
connection's peer address.

The header comes before anything else, TLS included, so `HeaderReader`
reads exactly the header off a socket that `transport.acceptor` accepted
(peeking, so not one byte of what follows is taken) before the loop gets the
socket. The `proxy-protocol` package parses the header; this module finds
where it ends. A connection without a valid header is closed with one log
line.
"""

from __future__ import annotations

import logging
import socket

from proxyprotocol import ProxyProtocolChecksumError, ProxyProtocolSyntaxError
from proxyprotocol.detect import ProxyProtocolDetect
from proxyprotocol.result import ProxyResultIPv4, ProxyResultIPv6

from actormq.transport.listeners import peer_text

log = logging.getLogger("actormq.proxy_protocol")

V1_SIGNATURE = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX_LENGTH = 107
HEADER_TIMEOUT = 10.0
_PEEK = 4096
_DETECT = ProxyProtocolDetect()


class ProxyHeaderError(ValueError):
    """Not a valid PROXY protocol header."""


def header_length(data: bytes) -> int | None:
    """The length of the PROXY header `data` starts with; None while it is incomplete."""
    if data[:1] == b"P" and (data.startswith(V1_SIGNATURE) or V1_SIGNATURE.startswith(data)):
        end = data.find(b"\n")
        if end == -1:
            if len(data) >= V1_MAX_LENGTH:
                raise ProxyHeaderError("PROXY v1 line longer than 107 bytes")
            return None
        return end + 1
    if data[:1] == b"\r" and (data.startswith(V2_SIGNATURE) or V2_SIGNATURE.startswith(data)):
        if len(data) < 16:
            return None
        total = 16 + int.from_bytes(data[14:16], "big")
        return total if len(data) >= total else None
    raise ProxyHeaderError("no PROXY protocol signature")


def parse_header(header: bytes) -> tuple[str, int] | None:
    """The client address of a complete header; None for LOCAL/UNKNOWN (use the socket's)."""
    try:
        result = _DETECT.unpack(header)
    except (ProxyProtocolSyntaxError, ProxyProtocolChecksumError, ValueError) as exc:
        raise ProxyHeaderError(str(exc) or "malformed PROXY header") from None
    if isinstance(result, (ProxyResultIPv4, ProxyResultIPv6)):
        host, port = result.source
        return str(host), port
    return None


class HeaderReader:
    """Takes exactly one PROXY header off a new socket, then calls
    `done(reader, address)` (the header's client address, or the socket's peer
    for a LOCAL/UNKNOWN header); on a bad or missing header it logs one line,
    closes the socket and calls `done(reader, None)`."""

    def __init__(self, loop, listener, sock: socket.socket, peer, done) -> None:
        self.loop = loop
        self.listener = listener
        self.sock = sock
        self.peer = peer
        self.done = done
        self.header = b""
        self.timer = loop.call_later(HEADER_TIMEOUT, self.fail, "no PROXY header in time")
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        want = _PEEK
        if len(self.header) >= 16 and self.header.startswith(V2_SIGNATURE):
            want = 16 + int.from_bytes(self.header[14:16], "big") - len(self.header)
        try:
            data = self.sock.recv(want, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.fail(f"read failed: {exc.strerror or exc}")
            return
        if not data:
            self.fail("closed before a PROXY header")
            return
        try:
            self._take(data)
        except ProxyHeaderError as exc:
            self.fail(str(exc))

    def _take(self, data: bytes) -> None:
        known = len(self.header)
        total = header_length(self.header + data)
        take = len(data) if total is None else total - known
        self.header += self.sock.recv(take)
        if total is None:
            return
        address = parse_header(self.header)
        self._stop()
        self.done(self, address or self.peer)

    def _stop(self) -> None:
        self.timer.cancel()
        self.loop.remove_reader(self.sock.fileno())

    def fail(self, reason: str | None) -> None:
        """Close the socket; `reason` (None: the listener closes) goes to the log."""
        self._stop()
        if reason:
            log.info("%s: connection from %s closed: %s", self.listener.key, peer_text(self.peer), reason)
        self.sock.close()
        self.done(self, None)
