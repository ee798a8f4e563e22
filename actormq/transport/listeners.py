"""MQTT TCP listeners: sockets bound with SO_REUSEPORT so every worker process
listens on the same port and the kernel spreads new connections; and the
node's claim on each such port, so that only its own workers share it.

SO_REUSEPORT lets any process of the same user join a listening port, so a
second broker would start silently and take half of the clients. Before its
workers bind a shared port, the node claims it (`claim_port`, for every
shared listener): a socket bound with SO_REUSEADDR but without SO_REUSEPORT,
held, never listening, until the node exits. The workers' listeners can bind
beside it (a non-listening SO_REUSEADDR socket does not conflict), but a
second claim on a port where workers listen fails with EADDRINUSE, whatever
the address family of the listener (0.0.0.0 and 127.0.0.1 conflict). Two
nodes started at the same moment both claim before either listens; a named
lock in the abstract unix socket namespace (Linux; released with the process,
also on kill -9) settles that race.
"""

from __future__ import annotations

import errno
import socket
import sys

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


class PortClaim:
    """This node's hold on a shared listening port (see the module docstring)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self._sockets: list[socket.socket] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        claim = self._open(family)
        claim.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._bind(claim, (host, port), port)
        self.port = claim.getsockname()[1]
        if sys.platform.startswith("linux"):
            self._bind(self._open(socket.AF_UNIX), f"\0actormq-listener:{host}:{self.port}",
                       self.port)

    def _open(self, family: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        self._sockets.append(sock)
        return sock

    def _bind(self, sock: socket.socket, address, port: int) -> None:
        try:
            sock.bind(address)
        except OSError as exc:
            self.close()
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
            raise TransportError(f"cannot listen on {self.host}:{port}: {reason}") from exc

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


def claim_port(host: str, port: int) -> PortClaim:
    """Claim host:port (0: a free port, read back from `.port`) for this node's
    workers; TransportError "cannot listen on H:P: address already in use" when
    another broker, or anything else, listens there. Hold it until the node exits."""
    return PortClaim(host, port)


async def start_listener(loop, host: str, port: int, protocol_factory, backlog: int = 1024):
    """Serve MQTT on host:port; returns the asyncio Server."""
    sock = bind_reuseport(host, port, backlog)
    # create_server listens again with its own backlog (default 100): pass ours
    return await loop.create_server(protocol_factory, sock=sock, backlog=backlog)
