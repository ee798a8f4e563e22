"""The pooled aiohttp client of the HTTP auth / ACL source: one session per
worker loop, retries with backoff, and one deadline over all of it.

`HttpClient.send` returns `(status, body)` or raises `SourceUnavailable`
when no answer came within `timeout` seconds (connection refused, reset,
slow server): the caller fails closed. Only transport errors are retried
(`retry_times` more tries, `retry_interval` seconds apart, multiplied by
`retry_backoff` each time), never an HTTP status, and never past the deadline.

Await `send` in a task of its own (the hook chains run the awaitable a hook
returns in one): its deadline is that task's `asyncio.timeout`, which costs
a timer, where `asyncio.wait_for` would cost another task per request. The
session keeps no cookies and each URL is parsed once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from yarl import URL

from actormq.auth.http_request import BuiltRequest

log = logging.getLogger("actormq.auth")


class SourceUnavailable(Exception):
    """An auth / ACL source gave no answer in time."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    times: int = 3
    interval: float = 1.0
    backoff: float = 2.0

    def delays(self):
        delay = self.interval
        for _ in range(self.times):
            yield delay
            delay *= self.backoff


class HttpClient:
    """aiohttp ClientSession with a bounded connection pool, created on first use on the running loop."""

    def __init__(self, timeout: float = 5.0, pool_size: int = 32, retry: RetryPolicy = RetryPolicy()) -> None:
        self.timeout, self.pool_size, self.retry = timeout, pool_size, retry
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_size, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  cookie_jar=aiohttp.DummyCookieJar(),
                                                  timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def send(self, request: BuiltRequest) -> tuple[int, bytes]:
        """The answer to `request` (awaited in a task of its own, see the module's docstring)."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._send_with_retries(request)
        except TimeoutError:
            raise SourceUnavailable(f"{request.url}: no answer within {self.timeout:g}s") from None

    async def _send_with_retries(self, request: BuiltRequest) -> tuple[int, bytes]:
        delays = self.retry.delays()
        while True:
            try:
                return await self._send_once(request)
            except (aiohttp.ClientError, OSError) as problem:
                delay = next(delays, None)
                if delay is None:
                    raise SourceUnavailable(f"{request.url}: {str(problem) or type(problem).__name__}") from None
                await asyncio.sleep(delay)

    async def _send_once(self, request: BuiltRequest) -> tuple[int, bytes]:
        session = self._client_session()
        url = self._urls.get(request.url)
        if url is None:
            url = self._urls[request.url] = URL(request.url)
        async with session.request(request.method, url, params=request.query, data=request.body,
                                   headers=request.headers) as response:
            return response.status, await response.read()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
