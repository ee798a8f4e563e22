"""Test plugin: appends "|second" to every payload under order/, and decides
order/deny-second with an error (the first plugin in plugins.order wins)."""

from actormq.hooks import NEXT, OK, Error, Plugin, modified


class Stamp(Plugin):
    name = "second"

    def on_client_authorize_publish(self, client, message):
        if message.topic_name == "order/deny-second":
            return Error(0x87, "second")
        if message.topic_name.startswith("order/deny-"):
            return OK
        return NEXT

    def on_message_publish(self, client, message):
        if message.topic_name.startswith("order/"):
            return modified(message, payload=message.payload + b"|second")
        return None
