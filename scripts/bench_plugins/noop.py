"""Benchmark plugin: hooks message.publish and message.deliver and changes nothing
(the cost of a chain step itself). noop_b .. noop_e are the same under other names."""

from actormq.hooks import Plugin


class NoOp(Plugin):
    name = "noop"

    def on_message_publish(self, client, message):
        return None

    def on_message_deliver(self, client_id, message):
        return None
