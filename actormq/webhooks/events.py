"""From hook arguments to the event fields webhooks send.

`vmq_event` builds the mapping `actormq.webhooks.vmq_bodies.build_body`
reads (VerneMQ's field names) from a `ClientInfo` and optionally a
`Message` or a subscription; `emqx_event` the mapping of the EMQX 4 web hook
bodies (`actormq.webhooks.emqx_webhook`). Both are plain dicts built once
per event, after the client was answered (notifications) or before the
endpoint is asked (decisions).
"""

from __future__ import annotations

from typing import Any

from actormq.hooks.info import ClientInfo

_RETAIN_HANDLING = ("send_retain", "send_if_new_sub", "dont_send")


def vmq_client(client: ClientInfo) -> dict[str, Any]:
    return {"peer_addr": client.peer_host, "peer_port": client.peer_port,
            "mountpoint": client.mountpoint, "client_id": client.client_id,
            "username": client.username, "password": client.password,
            "clean_session": client.clean_start, "clean_start": client.clean_start,
            "properties": client.properties}


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
