"""Accepting connections on listeners that need something before the loop's
transport takes a socket: a PROXY header (read off the raw socket first) and
TLS (the loop's handshake, awaited here so a failure is one log line).

`Acceptor` accepts on the listening socket in the worker's loop, takes a place
in the listener's connection limit (a Slot, held from there on: handshakes in
progress count), reads the PROXY header when the listener wants one, then
hands the socket to `loop.connect_accepted_socket` with the TLS context and
the next layer's protocol (`then(address, slot)`). Plain TCP and Unix
listeners without a PROXY header use the loop's own server instead.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from actormq.transport.listeners import peer_text

log = logging.getLogger("actormq.listeners")

HANDSHAKE_TIMEOUT = 10.0
ACCEPTS_PER_WAKEUP = 64


class Acceptor:
    """Serves one listening socket; `close` stops it and its pending sockets."""

    def __init__(self, loop, listener, sock: socket.socket, then, admit, tls=None) -> None:
        self.loop = loop
        self.listener = listener
        self.sock = sock
        self.then = then
        self.admit = admit          # admit(peer) -> its Slot, None: no room for one more
        self.tls = tls              # TlsContext or None
        self.readers: set = set()   # PROXY headers being read
        self.handshakes: set[asyncio.Task] = set()    # the loop keeps only weak references
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                conn, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("%s: accept failed: %s", self.listener.key, exc.strerror or exc)
                return
            slot = self.admit(peer)
            if slot is None:
                conn.close()
                continue
            conn.setblocking(False)
            if conn.family != socket.AF_UNIX:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.listener.proxy_protocol:
                self._read_header(conn, peer, slot)
            else:
                self._serve(conn, None, peer, slot)

    def _read_header(self, conn: socket.socket, peer, slot) -> None:
        from actormq.transport.proxy_protocol import HeaderReader

        def header_read(reader, address) -> None:
            self.readers.discard(reader)
            if address is None:
                slot.release()
            else:
                self._serve(reader.sock, address, address, slot)
        self.readers.add(HeaderReader(self.loop, self.listener, conn, peer, header_read))

    def _serve(self, conn: socket.socket, address, peer, slot) -> None:
        task = self.loop.create_task(self._connect(conn, address, peer, slot))
        self.handshakes.add(task)
        task.add_done_callback(self.handshakes.discard)

    async def _connect(self, conn: socket.socket, address, peer, slot) -> None:
        tls = self.tls.context if self.tls is not None else None
        try:
            await self.loop.connect_accepted_socket(
                lambda: self.then(address, slot), conn, ssl=tls,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls is not None else None)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            slot.release()
            from actormq.transport.tls import describe_error
            what = "TLS handshake with" if tls is not None else "connection from"
            log.info("%s: %s %s failed: %s", self.listener.key, what, peer_text(peer), describe_error(exc))
            conn.close()

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        for reader in list(self.readers):
            reader.fail(None)
        self.sock.close()
