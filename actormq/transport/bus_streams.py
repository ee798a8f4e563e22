"""The Unix stream sockets under the bus: one connection per ordered pair of
workers, written and read by the workers' event loops themselves.

A frame on the stream is its length (4 bytes) and the frame. `Outbound` is
the connection to one peer's inbox: a frame goes straight into the socket
when nothing waits before it (one `send`, the peer's loop wakes: no other
thread on either side), else joins the frames waiting (the peer is not
listening yet, or its socket buffer is full) up to the high-water mark.
`Inbound` is a connection a peer opened to this worker's inbox: what it
reads is cut into frames.

Measured (`scripts/bus_hop.py`): a round trip between two processes took
18–33 µs over a socket against 88–146 µs over ZeroMQ `ipc`, whose every hop
wakes an I/O thread in both processes besides the receiving loop.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections import deque

_LENGTH = struct.Struct(">I")
READ_BYTES = 262144         # what one read of an inbound connection takes at most
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionRefusedError, FileNotFoundError)
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)


def listen(path: str) -> socket.socket:
    """A non-blocking listening socket at `path` (a stale one left by a dead
    worker is replaced)."""
    with_stale = os.path.exists(path)
    if with_stale:
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def stream_frame(frame: bytes) -> bytes:
    return _LENGTH.pack(len(frame)) + frame


class Outbound:
    """The connection to one peer's inbox and the frames waiting for it."""

    __slots__ = ("path", "sock", "waiting", "partial", "writing")

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self.waiting: deque = deque()           # stream frames (or their rest) not yet in the socket
        self.partial = False                    # waiting[0] is the rest of a frame begun
        self.writing = False                    # a loop writer is waiting for room

    def connect(self) -> bool:
        """Connect to the peer's inbox if it listens; True when connected."""
        if self.sock is not None:
            return True
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(self.path)
        except (BlockingIOError, InterruptedError, *_GONE):
            sock.close()    # not listening (yet), or its backlog is full: later
            return False
        self.sock = sock
        return True

    def send(self, data: bytes) -> bool:
        """Put a stream frame into the socket now if nothing waits before it;
        False: it waits (call `write_waiting` once there is room or a peer)."""
        if not self.waiting and (self.sock is not None or self.connect()):
            try:
                sent = self.sock.send(data, _SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self.broken(exc)    # a restarted peer listens again: the next connection
                return self.send(data) if self.connect() else self._wait(data)
            if sent == len(data):
                return True
            if sent:
                data = memoryview(data)[sent:]
                self.partial = True
        return self._wait(data)

    def _wait(self, data: bytes) -> bool:
        self.waiting.append(data)
        return False

    def write_waiting(self) -> bool:
        """Send what waits, as far as the socket takes it; True when nothing waits."""
        waiting = self.waiting
        while waiting:
            if self.sock is None and not self.connect():
                return False
            data = waiting[0]
            try:
                sent = self.sock.send(data, _SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                self.broken(exc)
                continue
            if sent < len(data):
                waiting[0] = memoryview(data)[sent:]
                self.partial = True
                return False
            waiting.popleft()
            self.partial = False
        return True

    def broken(self, exc: OSError) -> None:
        """The peer closed or died: forget the connection and the rest of a frame
        begun on it; what waits goes to the next connection."""
        if not isinstance(exc, _GONE) and exc.errno not in (errno.EPIPE, errno.ECONNRESET):
            raise exc
        self.close()
        if self.partial:
            self.waiting.popleft()
            self.partial = False

    def forget(self) -> None:
        """Drop the connection and everything waiting (the peer died)."""
        self.close()
        self.waiting.clear()
        self.partial = False

    def finish(self, seconds: float) -> None:
        """Send what waits, blocking at most `seconds` in all, and close."""
        sock = self.sock
        if self.waiting and sock is not None:
            sock.settimeout(seconds)
            try:
                sock.sendall(b"".join(self.waiting))
            except OSError:
                pass        # the peer is gone or does not read: what is left is lost
            self.waiting.clear()
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Inbound:
    """A connection a peer opened to this worker's inbox."""

    __slots__ = ("sock", "buffer", "at", "ended")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.buffer = bytearray()
        self.at = 0             # where the frames not delivered yet begin in buffer
        self.ended = False

    def next_frame(self) -> bytes | None:
        """The next whole frame read, reading more when none is left; None when
        nothing more has come (`ended`: the peer closed the connection)."""
        frame = self._cut()
        if frame is not None or self.ended:
            return frame
        try:
            data = self.sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return None
        except ConnectionResetError:
            data = b""
        if not data:
            self.ended = True
            return None
        buffer = self.buffer
        if self.at:
            del buffer[:self.at]
            self.at = 0
        buffer += data
        return self._cut()

    def _cut(self) -> bytes | None:
        buffer, at = self.buffer, self.at
        if len(buffer) - at < 4:
            return None
        (size,) = _LENGTH.unpack_from(buffer, at)
        end = at + 4 + size
        if end > len(buffer):
            return None
        self.at = end
        return bytes(memoryview(buffer)[at + 4:end])
