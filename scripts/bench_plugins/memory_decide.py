"""Benchmark plugin: an asynchronous publish authorization answered from memory
(a dict of allowed topic prefixes), the shape of an auth backend with a cache:
every PUBLISH waits for one coroutine."""

from actormq.hooks import NEXT, OK, Plugin


class MemoryDecide(Plugin):
    name = "memory_decide"

    def start(self) -> None:
        self.allowed = {"fanin": True, "t": True}

    async def on_client_authorize_publish(self, client, message):
        return OK if self.allowed.get(message.topic_name.split("/", 1)[0]) else NEXT
