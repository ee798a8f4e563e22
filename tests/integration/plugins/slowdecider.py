"""Test plugin: asynchronous decisions that take `delay` seconds for clients whose id
starts with "slow" (and answer at once for the others) on CONNECT, SUBSCRIBE, PUBLISH."""

import asyncio

from actormq.conf.keytypes import Key, Kind
from actormq.hooks import OK, Error, Plugin


class SlowDecider(Plugin):
    name = "slowdecider"
    config_schema = (Key("delay", Kind.FLOAT, "0.3", "Seconds a slow client's decision takes."),)

    async def _answer(self, client_id, answer=OK):
        if client_id.startswith("slow"):
            await asyncio.sleep(self.settings["delay"])
        return answer

    async def on_client_authenticate(self, client):
        return await self._answer(client.client_id)

    async def on_client_authorize_subscribe(self, client, topic_filter, options):
        return await self._answer(client.client_id)

    async def on_client_authorize_publish(self, client, message):
        answer = Error(0x87, "slow no") if message.topic_name.endswith("/refused") else OK
        return await self._answer(client.client_id, answer)
