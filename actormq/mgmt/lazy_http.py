"""The management API's listening socket: bound when the node starts (so a
port in use stops the start, and the banner shows the URL), while aiohttp and
the routes are imported, and take the socket over, at the first connection.
A broker whose API nobody asks stays about 15 MB smaller and starts faster;
the first request waits for that import (a fraction of a second) in the
socket's backlog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Callable

log = logging.getLogger("actormq.mgmt")


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (raises OSError)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class LazyHttpServer:
    """Serves `make_app()` (an aiohttp Application) on `sock`, from its first connection on."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 make_app: Callable[[], object]) -> None:
        self.loop = loop
        self.sock = sock
        self.make_app = make_app
        self.runner = None
        self._starting: asyncio.Task | None = None
        loop.add_reader(sock.fileno(), self._first_connection)

    def _first_connection(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self._starting = self.loop.create_task(self._start())

    async def _start(self) -> None:
        try:
            from aiohttp import web

            runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, self.sock).start()
        except Exception:
            log.exception("the management API cannot start")
            self.sock.close()
            return
        self.runner = runner

    async def cleanup(self) -> None:
        if self._starting is None:
            self.loop.remove_reader(self.sock.fileno())
        else:
            with contextlib.suppress(Exception):
                await self._starting
        if self.runner is not None:
            await self.runner.cleanup()
        self.sock.close()
