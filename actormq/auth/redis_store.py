"""Reading VerneMQ-format records from Redis with `redis.asyncio` (extra `auth`,
imported when Redis is configured): one pooled
client per worker, one deadline per lookup; Redis down or slow raises
`SourceUnavailable` (callers fail closed), a record that is not in the
format is logged and treated as absent.
"""

from __future__ import annotations

import asyncio
import logging

from actormq.auth.http_client import SourceUnavailable
from actormq.auth.redis_format import RecordError, RedisRecord, parse_record, redis_key

log = logging.getLogger("actormq.auth")


def split_server(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"auth.redis.server must be host:port, got {server!r}")
    return host.strip("[]"), int(port)


class RedisRecords:
    def __init__(self, server: str, password: str = "", database: int = 0, pool_size: int = 8,
                 timeout: float = 5.0) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        host, port = split_server(server)
        self._errors = (RedisError, OSError, TimeoutError)
        self.timeout = timeout
        self._where = server
        self._client = aioredis.Redis(host=host, port=port, password=password or None, db=database,
                                      max_connections=pool_size, socket_timeout=timeout,
                                      socket_connect_timeout=timeout)

    async def fetch(self, mountpoint: str, client_id: str, username: str | None) -> RedisRecord | None:
        key = redis_key(mountpoint, client_id, username)
        try:  # wait_for runs the lookup in a task of its own, whoever started this coroutine
            text = await asyncio.wait_for(self._client.get(key), self.timeout)
        except self._errors as problem:
            raise SourceUnavailable(f"Redis {self._where}: {str(problem) or type(problem).__name__}") from None
        if text is None:
            return None
        try:
            return parse_record(text)
        except RecordError as problem:
            log.warning("Redis record %s skipped: %s", key, problem)
            return None

    async def close(self) -> None:
        await self._client.aclose()
