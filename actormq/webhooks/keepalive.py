"""The notification sender's HTTP/1.1 client: keep-alive connections on asyncio protocols.

A notification is one POST whose answer only says delivered or not, and the
sender delivers thousands a second on a CPU budget, so this client does per
POST only what a POST needs: the request head of a target (request line,
`Host`, its headers, up to `Content-Length: `) is made once (`request_head`);
a POST is one write of head, length and body on an idle keep-alive
connection, and its answer is read by httptools' C parser (llhttp, Node.js's)
on the connection's protocol, which hands back the status code. aiohttp's
client took several times the CPU per POST (its request and response
objects, header multidicts, URL handling and timers of each request).

`KeepAlivePool.post(url, headers, data, timeout_s)` is `HttpPool.post` for
notifications (the `Reply` has the status and body, no headers); its
`Origin`s own the connections to one scheme + host + port: at most
`max_connections` open, idle ones reused last-in first-out and closed after
`keepalive_s` idle, each POST given up after its timeout. The deadlines of
the POSTs in flight are checked by one timer per origin, armed for the
earliest of them, not by a timer per POST. Failures raise `HttpFailure`
naming why (refused, closed, no answer in time, a malformed answer); a
connection that failed, timed out or was told `Connection: close` is not
used again.
"""

from __future__ import annotations

import asyncio
import base64
import math
import ssl
from collections import deque
from typing import Mapping
from urllib.parse import unquote, urlsplit

import httptools

from actormq.webhooks.failure import HttpFailure
from actormq.webhooks.http import Reply

DEFAULT_PORTS = {"http": 80, "https": 443}
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http:// or https:// URL; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]


def request_head(url: str, headers: Mapping[str, str]) -> bytes:
    """A POST's request head for `url` with `headers`, up to the value of its Content-Length
    (user info in the URL becomes Basic authorization, as aiohttp sends it)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rpartition("@")[2]
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}"]
    if parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        lines.append(f"Authorization: Basic {base64.b64encode(secret).decode()}")
    for name, value in headers.items():
        if any(char in f"{name}{value}" for char in "\r\n\0") or not name:
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


class KeepAlivePool:
    """POSTs on keep-alive connections, at most `max_connections` per origin."""

    def __init__(self, max_connections: int = 100, keepalive_s: float = 60.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_connections = max_connections
        self._per_origin = (max_connections, keepalive_s, ssl_context)    # what each `Origin` is given
        self._origins: dict[tuple[str, str, int], Origin] = {}
        self._targets: dict[tuple, tuple[Origin, bytes]] = {}     # (url, headers) -> origin, request head

    async def post(self, url: str, headers: Mapping[str, str], data: bytes, timeout_s: float) -> Reply:
        key = (url, tuple(headers.items()))
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = self._target(url, headers)
        origin, head = target
        status, body = await origin.post(head, data, timeout_s)
        return Reply(status, {}, body)

    def _target(self, url: str, headers: Mapping[str, str]) -> tuple[Origin, bytes]:
        try:
            where, head = origin_of(url), request_head(url, headers)
        except ValueError as err:
            raise HttpFailure(str(err)) from None
        origin = self._origins.get(where)
        if origin is None:
            origin = self._origins[where] = Origin(where, *self._per_origin)
        return origin, head

    async def close(self) -> None:
        for origin in self._origins.values():
            origin.close()
        self._origins.clear()
        self._targets.clear()
        await asyncio.sleep(0)      # the transports' connection_lost


class Origin:
    """The keep-alive connections to one scheme + host + port."""

    def __init__(self, origin: tuple[str, str, int], max_connections: int, keepalive_s: float,
                 ssl_context: ssl.SSLContext | None) -> None:
        scheme, self.host, self.port = origin
        self.ssl = (ssl_context or True) if scheme == "https" else None
        self.max_connections = max(1, max_connections)
        self.keepalive_s = keepalive_s
        self._loop = asyncio.get_running_loop()
        self._idle: list[_Connection] = []
        self._open = 0                  # connections made or being made, not yet lost
        self._waiting: deque[asyncio.Future] = deque()     # POSTs waiting for a connection
        self._busy: set[_Connection] = set()
        self._watch: asyncio.TimerHandle | None = None
        self._watch_at = math.inf
        self._sweep: asyncio.TimerHandle | None = None

    async def post(self, head: bytes, body: bytes, timeout_s: float) -> tuple[int, bytes]:
        """POST `body` after `head` (from `request_head`); the answer's status code and body."""
        deadline = self._loop.time() + timeout_s
        connection = await self._connection(deadline, timeout_s)
        connection.deadline = deadline
        self._busy.add(connection)
        if deadline < self._watch_at:
            self._arm(deadline)
        try:
            return await connection.request(b"%s%d\r\n\r\n%s" % (head, len(body), body), timeout_s)
        finally:
            self._busy.discard(connection)
            self._release(connection)

    async def _connection(self, deadline: float, timeout_s: float) -> _Connection:
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
        if self._open >= self.max_connections:
            waiter = self._loop.create_future()
            self._waiting.append(waiter)
            try:
                connection = await asyncio.wait_for(waiter, deadline - self._loop.time())
            except asyncio.TimeoutError:
                raise HttpFailure(f"no connection free within {timeout_s:g} s") from None
            if connection is not None:
                return connection
        self._open += 1
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await self._loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self.ssl)
        except TimeoutError:
            self._lost()
            raise HttpFailure(f"no connection within {timeout_s:g} s") from None
        except (OSError, ssl.SSLError, ValueError) as err:
            self._lost()
            raise HttpFailure(str(err) or type(err).__name__) from None
        return connection

    def _release(self, connection: _Connection) -> None:
        if not connection.usable:
            connection.close()
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle_since = self._loop.time()
        self._idle.append(connection)
        if self._sweep is None:
            self._sweep = self._loop.call_later(self.keepalive_s, self._close_idle)

    def _lost(self, connection: _Connection | None = None) -> None:
        """A connection ended (or could not be made): its place is free."""
        self._open -= 1
        if connection in self._idle:
            self._idle.remove(connection)
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)         # it may open one
                return

    def _arm(self, deadline: float) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch_at = deadline
        self._watch = self._loop.call_at(deadline, self._time_out)

    def _time_out(self) -> None:
        """Give up the POSTs past their deadline; watch for the next one."""
        self._watch, self._watch_at = None, math.inf
        now = self._loop.time()
        for connection in list(self._busy):
            if connection.deadline <= now:
                connection.time_out()
        pending = [connection.deadline for connection in self._busy if connection.deadline > now]
        if pending:
            self._arm(min(pending))

    def _close_idle(self) -> None:
        self._sweep = None
        oldest = self._loop.time() - self.keepalive_s
        for connection in [connection for connection in self._idle if connection.idle_since <= oldest]:
            self._idle.remove(connection)
            connection.close()
        if self._idle:
            first = min(connection.idle_since for connection in self._idle)
            self._sweep = self._loop.call_at(first + self.keepalive_s, self._close_idle)

    def close(self) -> None:
        for timer in (self._watch, self._sweep):
            if timer is not None:
                timer.cancel()
        self._watch = self._sweep = None
        for connection in [*self._idle, *self._busy]:
            connection.close()
        self._idle.clear()


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a POST at a time, its answer's status and body from the parser."""

    def __init__(self, origin: Origin) -> None:
        self._origin = origin
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future | None = None
        self._status = 0            # of the answer being read, once its head is in
        self._framed = False        # it says where its body ends (a length, chunks)
        self._body: list[bytes] = []
        self._timeout_s = 0.0
        self.usable = True
        self.deadline = math.inf
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    async def request(self, data: bytes, timeout_s: float) -> tuple[int, bytes]:
        self._waiter = waiter = self._origin._loop.create_future()
        self._timeout_s = timeout_s
        self._transport.write(data)
        try:
            return await waiter
        except asyncio.CancelledError:
            self.close()            # its answer may still come: the connection is not used again
            raise

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            self._fail("an answer that was not asked for")
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(f"malformed answer ({err})")

    def on_header(self, name: bytes, _value: bytes) -> None:
        if name.lower() in _FRAMING:
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.usable = False
        self._answer()

    def _answer(self) -> None:
        waiter, self._waiter = self._waiter, None
        body, self._body = self._body, []
        status, self._status, self._framed = self._status, 0, False
        if waiter is not None and not waiter.done():
            waiter.set_result((status, b"".join(body) if len(body) != 1 else body[0]))

    def time_out(self) -> None:
        self._fail(f"no answer within {self._timeout_s:g} s")

    def _fail(self, reason: str) -> None:
        self.close()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(HttpFailure(reason))

    def close(self) -> None:
        self.usable = False
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        self._origin._lost(self)
        if exc is None and self._status and not self._framed and self._waiter is not None:
            self._answer()          # an answer without a length ends with its connection
        else:
            self._fail(str(exc) if exc else "connection closed")
