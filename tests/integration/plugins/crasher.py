"""Test plugin: raises on every PUBLISH to crash/... (its failure policy decides)."""

from actormq.hooks import NEXT, Plugin


class Crasher(Plugin):
    name = "crasher"

    def on_client_authorize_publish(self, client, message):
        if message.topic_name.startswith("crash/"):
            raise RuntimeError("the backend is down")
        return NEXT
