"""Test plugin: ``message.publish`` answered after `delay` seconds for topics under
slowfold/, kept unchanged (so a client's PUBLISHes wait in its pipeline)."""

import asyncio

from actormq.conf.keytypes import Key, Kind
from actormq.hooks import Plugin


class SlowFold(Plugin):
    name = "slowfold"
    config_schema = (Key("delay", Kind.FLOAT, "3.0", "Seconds a slowfold/ message waits."),)

    async def on_message_publish(self, client, message):
        if message.topic_name.startswith("slowfold/"):
            await asyncio.sleep(self.settings["delay"])
        return None
