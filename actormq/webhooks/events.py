"""From hook arguments to the event fields webhooks send.

`vmq_event` builds the mapping `actormq.webhooks.vmq_bodies.build_body`
reads (VerneMQ's field names) from a `ClientInfo` and optionally a
`Message` or a subscription; `emqx_event` the mapping of the EMQX 4 web hook
bodies (`actormq.webhooks.emqx_webhook`). Both are plain dicts built once
per event, after the client was answered (notifications) or before the
endpoint is asked (decisions).

Where a worker meets an event at every message or CONNECT, it captures a
tuple of the fields instead (`message_fields`, `register_key`): a
notification's tuple is made into the mapping by `message_event` in the
sender process, and a cached auth_on_register answer is found by its tuple
without making anything else.
"""

from __future__ import annotations

from typing import Any

import orjson

from actormq.hooks.info import ClientInfo

_RETAIN_HANDLING = ("send_retain", "send_if_new_sub", "dont_send")


def vmq_client(client: ClientInfo) -> dict[str, Any]:
    return {"peer_addr": client.peer_host, "peer_port": client.peer_port,
            "mountpoint": client.mountpoint, "client_id": client.client_id,
            "username": client.username, "password": client.password,
            "clean_session": client.clean_start, "clean_start": client.clean_start,
            "properties": client.properties}


def message_fields(client: ClientInfo, message) -> tuple:
    """What `message_event` makes the on_publish event of: the fields, captured as they are."""
    return (client.peer_host, client.peer_port, client.mountpoint, client.client_id, client.username,
            client.password, client.clean_start, client.properties, message.qos, message.topic_name,
            message.payload, message.retain, message.properties)


def message_event(fields: tuple) -> dict[str, Any]:
    """The mapping `vmq_message(vmq_client(client), message)` of captured `message_fields`."""
    (peer_host, peer_port, mountpoint, client_id, username, password, clean_start, client_properties,
     qos, topic, payload, retain, properties) = fields
    return {"peer_addr": peer_host, "peer_port": peer_port, "mountpoint": mountpoint,
            "client_id": client_id, "username": username, "password": password,
            "clean_session": clean_start, "clean_start": clean_start, "properties": properties,
            "qos": qos, "topic": topic, "payload": payload, "retain": retain}


def register_key(client: ClientInfo) -> tuple:
    """The auth cache key of the client's auth_on_register request: its fields but the peer
    port, as a tuple (the MQTT 5 properties as their sorted JSON)."""
    properties = client.properties
    return (client.peer_host, client.mountpoint, client.client_id, client.username, client.password,
            client.clean_start,
            orjson.dumps(properties, default=_plain, option=orjson.OPT_SORT_KEYS) if properties else None)


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return list(value)
    return dict(value)


def vmq_session(client_id: str, mountpoint: str = "", username: str | None = None) -> dict[str, Any]:
    return {"mountpoint": mountpoint, "client_id": client_id, "username": username}


def vmq_message(base: dict[str, Any], message) -> dict[str, Any]:
    """`base` (client fields) with the fields of a message."""
    return dict(base, qos=message.qos, topic=message.topic_name, payload=message.payload,
                retain=message.retain, properties=message.properties)


def vmq_subscription(base: dict[str, Any], topic_filter: str, options, mqtt5: bool) -> dict[str, Any]:
    qos = getattr(options, "qos", 0)
    if not mqtt5 or options is None:
        return dict(base, topics=[(topic_filter, qos)], properties={})
    return dict(base, properties={}, topics=[(topic_filter, qos, {
        "no_local": options.no_local, "rap": options.retain_as_published,
        "retain_handling": _RETAIN_HANDLING[options.retain_handling]})])


def emqx_client(client: ClientInfo, **extra: Any) -> dict[str, Any]:
    return dict({"clientid": client.client_id, "username": client.username,
                 "ipaddress": client.peer_host, "keepalive": client.keepalive,
                 "proto_ver": client.protocol_level}, **extra)


def emqx_message(message, **extra: Any) -> dict[str, Any]:
    return dict({"from_client_id": message.origin, "topic": message.topic_name, "qos": message.qos,
                 "retain": message.retain, "payload": message.payload,
                 "ts": int(message.timestamp * 1000)}, **extra)
