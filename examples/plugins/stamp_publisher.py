"""Stamp every message with who published it: MQTT 5 user properties
``publisher`` (the client id) and, when the client logged in, ``username``.
Subscribers can trust them: a property of that name sent by the publisher
itself is replaced.

    plugins.paths = examples/plugins
    plugins.order = stamp_publisher
    plugin.stamp_publisher.username = on

MQTT 3.1.1 subscribers receive the message without properties (3.1.1 has none).
"""

from __future__ import annotations

from actormq.conf.keytypes import Key, Kind
from actormq.hooks import Plugin, modified

STAMPS = ("publisher", "username")


class StampPublisher(Plugin):
    """Adds the publisher's client id (and username) as MQTT 5 user properties."""

    name = "stamp_publisher"
    config_schema = (Key("username", Kind.BOOL, "on", "Also stamp the publisher's username."),)

    def on_message_publish(self, client, message):
        stamps = [("publisher", client.client_id)]
        if self.settings["username"] and client.username is not None:
            stamps.append(("username", client.username))
        kept = [pair for pair in message.properties.get("user_property", ()) if pair[0] not in STAMPS]
        return modified(message, properties={**message.properties, "user_property": kept + stamps})
