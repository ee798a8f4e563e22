"""Serving the listeners in a worker: for each listener, the layers an
accepted connection goes through to its Connection (PROXY header and TLS in
`transport.acceptor`, then WebSocket), the asyncio server or acceptor on its
socket, the connection limit (a connection holds its `Slot` from the accept,
through its PROXY header, TLS handshake and WebSocket upgrade, until it
closes), and the TLS contexts reloaded on SIGHUP.

A plain TCP or Unix listener without a limit or PROXY header is served by the
loop's own server straight into Connection: no layer costs anything there.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import socket

from actormq.conf.areas.listeners import WS_TYPES
from actormq.errors import ConfigError
from actormq.transport.listeners import Listener, bind_reuseport, peer_text

log = logging.getLogger("actormq.listeners")


def check_listener(listener: Listener) -> None:
    """Load what a listener needs (its certificates, the packages of its
    layers) so that a missing one stops the start with a ConfigError."""
    needed = []
    if listener.type in WS_TYPES:
        needed.append(("wsproto", "wsproto"))
    if listener.proxy_protocol:
        needed.append(("proxyprotocol", "proxy-protocol"))
    for module, package in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(f"needs the {package} package (pip install 'actormq[listeners]')",
                              key=listener.key) from None
    if listener.tls is not None:
        from actormq.transport.tls import server_context
        server_context(listener.tls, listener.key)


class ConnectionSlots:
    """The connections of one listener over all workers, against its limit.

    Each worker counts its own in its row of an array shared by the node's
    workers (one writer per cell, so no lock); a restarted worker starts its
    row at zero. Taken at accept (`take`): a connection over the limit is closed.
    """

    def __init__(self, counts, worker_id: int, worker_count: int, index: int, limit: int) -> None:
        self.counts = counts
        self.cells = range(index, len(counts), len(counts) // worker_count)
        self.mine = worker_id * (len(counts) // worker_count) + index
        self.limit = limit
        counts[self.mine] = 0

    def take(self) -> "Slot | None":
        """A place for one more connection (None: the listener is full)."""
        counts = self.counts
        if sum(counts[cell] for cell in self.cells) >= self.limit:
            return None
        return Slot(self)

    def released(self) -> None:
        self.counts[self.mine] -= 1


class Slot:
    """One connection's place in its listener's count, from its accept until it
    closes (`release`, which counts once however many layers call it)."""

    __slots__ = ("slots",)

    def __init__(self, slots: ConnectionSlots | None) -> None:
        self.slots = slots
        if slots is not None:
            slots.counts[slots.mine] += 1

    def release(self) -> None:
        if self.slots is not None:
            self.slots.released()
            self.slots = None


UNCOUNTED = Slot(None)      # the slot of every connection on a listener without a limit


def shared_counts(listeners: tuple[Listener, ...], worker_count: int, ctx=multiprocessing):
    """The array ConnectionSlots count in, or None when no listener has a limit."""
    if not any(listener.max_connections for listener in listeners):
        return None
    return ctx.RawArray("q", worker_count * len(listeners))


class Refuse(asyncio.Protocol):
    """The protocol of a connection over its listener's limit: one log line, closed."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def connection_made(self, transport) -> None:
        _log_refused(self.listener, transport.get_extra_info("peername"))
        transport.close()


def layers(listener: Listener, make_connection):
    """`then(address, slot)`: the protocol a new connection on this listener starts with."""
    if listener.type not in WS_TYPES:
        return make_connection
    from actormq.transport.websocket import WebSocketProtocol

    def then(address=None, slot=None):
        return WebSocketProtocol(listener, make_connection, address, slot)
    return then


class ListenerServer:
    """One listener served in this worker: its socket's server and TLS context."""

    def __init__(self, listener: Listener, server, tls=None) -> None:
        self.listener = listener
        self.server = server
        self.tls = tls

    def close(self) -> None:
        self.server.close()

    def reload_certificates(self) -> None:
        if self.tls is not None:
            self.tls.reload()


async def serve_listener(loop, listener: Listener, make_connection, slots=None, backlog: int = 1024,
                         sock: socket.socket | None = None) -> ListenerServer:
    """Start serving one listener; `sock` is the node's socket of a unix listener."""
    tls = None
    if listener.tls is not None:
        from actormq.transport.tls import TlsContext
        tls = TlsContext(listener)
    then = layers(listener, make_connection)
    if sock is None:
        sock = bind_reuseport(listener.host, listener.port, backlog)
    if listener.proxy_protocol or tls is not None:
        from actormq.transport.acceptor import Acceptor
        return ListenerServer(listener, Acceptor(loop, listener, sock, then, _admit(listener, slots), tls), tls)
    if slots is None:
        factory = then
    else:
        def factory():
            slot = slots.take()
            return Refuse(listener) if slot is None else then(None, slot)
    if listener.type == "unix":
        server = await loop.create_unix_server(factory, sock=sock, backlog=backlog)
    else:
        server = await loop.create_server(factory, sock=sock, backlog=backlog)
    return ListenerServer(listener, server, tls)


def _admit(listener: Listener, slots):
    """admit(peer): the accepted connection's Slot, or None (refused, logged)."""
    def admit(peer) -> Slot | None:
        if slots is None:
            return UNCOUNTED
        slot = slots.take()
        if slot is None:
            _log_refused(listener, peer)
        return slot
    return admit


def _log_refused(listener: Listener, peer) -> None:
    log.info("%s: connection from %s refused: max_connections (%d) reached", listener.key,
             peer_text(peer), listener.max_connections)
