"""HTTP for webhooks: one keep-alive aiohttp pool per worker, one POST with a deadline,
and the bounded notification queues that never make a client wait.

`HttpPool` owns the aiohttp session (at most `max_connections` per endpoint,
idle connections closed after `keepalive_s`) and `post(url, headers, data,
timeout_s)` → `Reply` or an `HttpFailure` naming why. `Notifier` owns the
bounded queues of each endpoint and their sender tasks: `send` never waits;
when a queue is full the event is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Mapping

import aiohttp

log = logging.getLogger("actormq.webhooks")

LANES_PER_ENDPOINT = 4


class HttpFailure(Exception):
    """A request that got no answer: refused, reset, timed out."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


def client_ssl_context(cafile: str = "", certfile: str = "", keyfile: str = "",
                       verify: bool = True) -> ssl.SSLContext:
    """The TLS settings for https endpoints."""
    context = ssl.create_default_context(cafile=cafile or None)
    if certfile:
        context.load_cert_chain(certfile, keyfile or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class HttpPool:
    """A keep-alive connection pool shared by every webhook of one worker."""

    def __init__(self, max_connections: int = 100, keepalive_s: float = 60.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self.ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.max_connections,
                                             keepalive_timeout=self.keepalive_s,
                                             ssl=self.ssl_context if self.ssl_context else True)
            self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        return self._session

    async def post(self, url: str, headers: Mapping[str, str], data: bytes, timeout_s: float) -> Reply:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self._open().post(url, data=data, headers=headers, timeout=timeout) as response:
                return Reply(response.status, response.headers, await response.read())
        except asyncio.TimeoutError:
            raise HttpFailure(f"no answer within {timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as err:
            raise HttpFailure(str(err) or type(err).__name__) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


Payload = Callable[[], bytes]


class Notifier:
    """Bounded per-endpoint queues of notifications, sent in the background.

    Each endpoint has a few lanes (queue + sender task); a client's events
    always take the same lane (by `key`, the client id), so they arrive in
    the order they happened, while different clients are sent in parallel.
    """

    def __init__(self, pool: HttpPool, queue_size: int, timeout_s: float = 5.0,
                 lanes: int = LANES_PER_ENDPOINT) -> None:
        self.pool = pool
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self.lanes = max(1, min(lanes, pool.max_connections))
        self.counters: Counter[tuple[str, str]] = Counter()  # (endpoint, sent|failed|dropped)
        self._queues: dict[str, list[asyncio.Queue]] = {}
        self._tasks: list[asyncio.Task] = []

    def send(self, url: str, headers: Mapping[str, str], payload: Payload, key: str = "") -> bool:
        """Queue one POST; False (and counted) when its lane is full."""
        lanes = self._queues.get(url)
        if lanes is None:
            lanes = self._start(url)
        queue = lanes[zlib.crc32(key.encode()) % len(lanes)] if len(lanes) > 1 else lanes[0]
        try:
            queue.put_nowait((headers, payload))
        except asyncio.QueueFull:
            self.counters[url, "dropped"] += 1
            return False
        return True

    def _start(self, url: str) -> list[asyncio.Queue]:
        size = max(1, self.queue_size // self.lanes)
        lanes: list[asyncio.Queue] = [asyncio.Queue(size) for _ in range(self.lanes)]
        self._queues[url] = lanes
        loop = asyncio.get_running_loop()
        self._tasks += [loop.create_task(self._sender(url, queue)) for queue in lanes]
        return lanes

    async def _sender(self, url: str, queue: asyncio.Queue) -> None:
        while True:
            headers, payload = await queue.get()
            try:
                reply = await self.pool.post(url, headers, payload(), self.timeout_s)
            except HttpFailure as failure:
                self._failed(url, str(failure))
                continue
            if 200 <= reply.status < 300:
                self.counters[url, "sent"] += 1
            else:
                self._failed(url, f"HTTP {reply.status}")

    def _failed(self, url: str, reason: str) -> None:
        self.counters[url, "failed"] += 1
        failed = self.counters[url, "failed"]
        if failed in (1, 10, 100, 1000) or failed % 10000 == 0:
            log.warning("webhook %s: notification not delivered (%s); %d so far", url, reason, failed)

    def pending(self) -> int:
        return sum(queue.qsize() for lanes in self._queues.values() for queue in lanes)

    async def drain(self, timeout_s: float = 1.0) -> None:
        """Give queued notifications up to `timeout_s` to go out (used at stop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.pending() and loop.time() < deadline:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._queues.clear()
