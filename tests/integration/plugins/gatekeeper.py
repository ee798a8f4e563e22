"""Test plugin: synchronous decisions and modifiers at every decide and fold point,
chosen by username, topic and client id (see the tests in test_hooks_points.py)."""

from actormq.conf.keytypes import Key, Kind
from actormq.hooks import DROP, NEXT, Error, Ok, Plugin, modified


class Gatekeeper(Plugin):
    name = "gatekeeper"
    config_schema = (
        Key("max_payload", Kind.BYTESIZE, "1KB", "Largest payload under big/."),
        Key("mountpoint", Kind.STR, "tenant1/", "Mountpoint of user mp."),
    )

    def on_client_authenticate(self, client):
        user = client.username
        if user == "bad":
            return Error(0x86, "bad user")
        if user == "mp":
            return Ok(mountpoint=self.settings["mountpoint"])
        if user == "limited":
            return Ok(max_inflight_messages=1, max_online_messages=2)
        if user == "renamed":
            return Ok(client_id="renamed-" + client.client_id)
        if user == "super":
            return Ok(superuser=True)
        if user == "badmod":
            return Ok(max_inflight_messages="many")
        return NEXT

    def on_client_authorize_publish(self, client, message):
        topic = message.topic_name
        if topic.startswith("deny/"):
            return Error(0x87, "denied")
        if topic.startswith("rewrite/"):
            return Ok(topic_name="rewritten/" + topic[len("rewrite/"):], qos=0)
        if topic.startswith("big/") and len(message.payload) > self.settings["max_payload"]:
            return Error(0x97, "too big")
        return NEXT

    def on_client_authorize_subscribe(self, client, topic_filter, options):
        if topic_filter.startswith("secret/"):
            return Error(0x87, "secret")
        if topic_filter.startswith("low/"):
            return Ok(qos=0)
        if topic_filter.startswith("alias/"):
            return Ok(topic_filter="aliased/" + topic_filter[len("alias/"):])
        return NEXT

    def on_client_unsubscribe(self, client, topic_filter):
        if topic_filter.startswith("locked/"):
            return Error(0x87, "locked")
        if topic_filter.startswith("alias/"):
            return Ok(topic_filter="aliased/" + topic_filter[len("alias/"):])
        return NEXT

    def on_message_publish(self, client, message):
        if message.topic_name.startswith("upper/"):
            return modified(message, payload=message.payload.upper())
        if message.topic_name.startswith("drop/"):
            return DROP
        return None

    def on_message_deliver(self, client_id, message):
        if client_id.startswith("stamped"):
            props = dict(message.properties)
            props["user_property"] = list(props.get("user_property", ())) + [("to", client_id)]
            return modified(message, properties=props)
        return None

    def on_message_will(self, client_id, message):
        if message.topic_name.endswith("/drop"):
            return DROP
        if message.topic_name.endswith("/upper"):
            return modified(message, payload=message.payload.upper())
        return None
