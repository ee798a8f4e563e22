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
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import aiohttp
import orjson

from actormq.webhooks.failure import HttpFailure
from actormq.webhooks.lanes import Lanes
from actormq.webhooks.vmq_bodies import build_body

log = logging.getLogger("actormq.webhooks")

LANES_PER_ENDPOINT = 4      # in the worker (before its sender is up); the sender has one per connection


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

    def open(self) -> aiohttp.ClientSession:
        """The session (made on first use, or now)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.max_connections,
                                             keepalive_timeout=self.keepalive_s,
                                             ssl=self.ssl_context if self.ssl_context else True)
            self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        return self._session

    async def post(self, url: str, headers: Mapping[str, str], data: bytes, timeout_s: float) -> Reply:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self.open().post(url, data=data, headers=headers, timeout=timeout) as response:
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


class Notifier(Lanes):
    """Background POSTs: per endpoint a few lanes (by client id, so a client's events arrive
    in order); a full lane drops the event and counts it; never waits."""

    def __init__(self, pool: HttpPool, queue_size: int, timeout_s: float = 5.0,
                 lanes: int = LANES_PER_ENDPOINT) -> None:
        super().__init__(self._post, queue_size, min(lanes, pool.max_connections))
        self.pool = pool
        self.timeout_s = timeout_s

    credit = 1      # never refuses ahead of time: a full lane drops

    def send(self, url: str, headers: Mapping[str, str], payload: Payload, key: str = "",
             timeout_s: float | None = None) -> bool:
        """Queue one POST of `payload()` (built when it is sent), given up after `timeout_s`
        (default: the notifier's); False when dropped."""
        return self.put(url, (headers, payload, timeout_s or self.timeout_s), key)

    def send_vmq(self, url: str, headers: Mapping[str, str], hook: str, base64_payload: bool,
                 event: Callable[[], Mapping[str, Any]], key: str = "", timeout_s: float | None = None) -> bool:
        """A VerneMQ webhook notification: the body of `hook` for `event()`."""
        return self.send(url, headers, lambda: orjson.dumps(build_body(hook, event(), base64_payload)), key,
                         timeout_s)

    def send_fields(self, url: str, headers: Mapping[str, str], hook: str, base64_payload: bool,
                    make: Callable[[tuple], Mapping[str, Any]], fields: tuple, key: str = "",
                    timeout_s: float | None = None) -> bool:
        """A VerneMQ webhook notification of an event captured as `fields` (`make` makes it)."""
        return self.send_vmq(url, headers, hook, base64_payload, lambda: make(fields), key, timeout_s)

    async def _post(self, url: str, item: tuple[Mapping[str, str], Payload, float]) -> bool:
        headers, payload, timeout_s = item
        try:
            reply = await self.pool.post(url, headers, payload(), timeout_s)
        except HttpFailure as failure:
            return self._failed(url, str(failure))
        if 200 <= reply.status < 300:
            return True
        return self._failed(url, f"HTTP {reply.status}")

    def _failed(self, url: str, reason: str) -> bool:
        failed = self.counters[url, "failed"] + 1
        if failed in (1, 10, 100, 1000) or failed % 10000 == 0:
            log.warning("webhook %s: notification not delivered (%s); %d so far", url, reason, failed)
        return False
