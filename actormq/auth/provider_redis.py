"""The Redis auth provider (plugin `auth_redis`): VerneMQ `vmq_diversity`
records (`actormq.auth.redis_format`) decide the CONNECT.

No record for ["mountpoint","clientid","username"] → next; a wrong
password → 0x86; right → allowed, with `superuser` and the record's
`register_modifiers` (VerneMQ's names) applied to the client. Redis down
or slow → 0x88 Server unavailable within `auth.redis.timeout`.
"""

from __future__ import annotations

import asyncio
import logging

from actormq.auth import configured
from actormq.auth.http_client import SourceUnavailable
from actormq.auth.provider_file import BAD_USER_NAME_OR_PASSWORD
from actormq.auth.provider_http import SERVER_UNAVAILABLE
from actormq.auth.redis_store import RedisRecords
from actormq.hooks import NEXT, Error, HookPoint, Ok, Plugin

log = logging.getLogger("actormq.auth")

_REGISTER_MODIFIERS = HookPoint.CLIENT_AUTHENTICATE.modifiers


def redis_records(config) -> RedisRecords:
    return RedisRecords(config["auth.redis.server"], config["auth.redis.password"], config["auth.redis.database"],
                        config["auth.redis.pool_size"], float(config["auth.redis.timeout"]))


class RedisAuthPlugin(Plugin):
    name = "auth_redis"
    timeout = 3600.0  # auth.redis.timeout bounds each decision; this only backs it up

    @classmethod
    def wanted(cls, config) -> bool:
        return configured.redis(config)

    def start(self) -> None:
        self.records = redis_records(self.context.config)

    async def stop(self) -> None:
        await self.records.close()

    async def on_client_authenticate(self, client):
        try:
            record = await self.records.fetch(client.mountpoint, client.client_id, client.username)
        except SourceUnavailable as problem:
            return Error(SERVER_UNAVAILABLE, str(problem))
        if record is None:
            return NEXT
        password = client.password or b""
        if not await asyncio.to_thread(record.passhash.verify, password):
            return Error(BAD_USER_NAME_OR_PASSWORD, f"wrong password for user {client.username!r}")
        modifiers = {name: value for name, value in record.register_modifiers.items()
                     if name in _REGISTER_MODIFIERS}
        for unknown in set(record.register_modifiers) - set(modifiers):
            log.warning("Redis record of client %s: register modifier %r ignored (known: %s)",
                        client.client_id, unknown, ", ".join(sorted(_REGISTER_MODIFIERS)))
        if record.superuser:
            modifiers["superuser"] = True
        return Ok(**modifiers)
