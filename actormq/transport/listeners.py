"""MQTT TCP listeners: sockets bound with SO_REUSEPORT so every worker process
listens on the same port and the kernel spreads new connections."""

from __future__ import annotations

import socket

from actormq.errors import TransportError


def bind_reuseport(host: str, port: int, backlog: int = 1024, listen: bool = True) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEADDR and SO_REUSEPORT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Resolve port 0 to a concrete free port that the workers can all bind.

    The returned socket is bound but not listening; keep it open until the
    workers have bound the port, so nothing else takes it in between.
    """
    sock = bind_reuseport(host, port, listen=False)
    return sock, sock.getsockname()[1]


async def start_listener(loop, host: str, port: int, protocol_factory, backlog: int = 1024):
    """Serve MQTT on host:port; returns the asyncio Server."""
    sock = bind_reuseport(host, port, backlog)
    # create_server listens again with its own backlog (default 100): pass ours
    return await loop.create_server(protocol_factory, sock=sock, backlog=backlog)
