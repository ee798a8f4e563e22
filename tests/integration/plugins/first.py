"""Test plugin: appends "|first" to every payload under order/, and decides
order/deny-first with an error (the first plugin in plugins.order wins)."""

from actormq.hooks import NEXT, OK, Error, Plugin, modified


class Stamp(Plugin):
    name = "first"

    def on_client_authorize_publish(self, client, message):
        if message.topic_name == "order/deny-first":
            return Error(0x87, "first")
        if message.topic_name.startswith("order/deny-"):
            return OK
        return NEXT

    def on_message_publish(self, client, message):
        if message.topic_name.startswith("order/"):
            return modified(message, payload=message.payload + b"|first")
        return None
