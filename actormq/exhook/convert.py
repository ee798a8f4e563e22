"""From hook arguments to the fields of ExHook request messages, and from a returned Message back.

The functions here make plain dicts (the keyword arguments of the protobuf
messages, nested messages as dicts): `request(method, fields, meta)` makes
the request of an RPC from them, in the worker for a decision, in the
notification sender for a notification (a dict is far cheaper to make and
hand over than a protobuf message; a notification's message goes as a plain
tuple, `message_record`, made into fields there). Field contents follow
EMQX 4's `emqx_exhook_handler`: absent strings are
"", `protocol` is "mqtt", `proto_ver` the protocol level as text, the
message `id` a hex string, `timestamp` milliseconds, `headers` carries
`username`, `protocol` and `peerhost` of the publisher; a returned message
with header `allow_publish = "false"` is to be dropped.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from actormq.exhook import exhook_pb2 as pb
from actormq.hooks.info import ClientInfo

_IDS = itertools.count(1)
_ID_PREFIX = os.urandom(8).hex()


Fields = dict[str, Any]


def request(method: str, fields: Fields, meta: pb.RequestMeta):
    """The request message of RPC `method` (OnClientConnect -> ClientConnectRequest); a
    `message` given as a `message_record` becomes its fields here."""
    record = fields.get("message")
    if type(record) is tuple:
        fields = {**fields, "message": _message_fields(record, meta.node)}
    return getattr(pb, method[2:] + "Request")(meta=meta, **fields)


def client_info(client: ClientInfo, node: str) -> Fields:
    password = client.password.decode("utf-8", "replace") if client.password else ""
    return dict(node=node, clientid=client.client_id, username=client.username or "",
                         password=password, peerhost=client.peer_host, sockport=client.peer_port,
                         protocol="mqtt", mountpoint=client.mountpoint, is_superuser=client.superuser,
                         anonymous=client.username is None, cn=client.cert_cn or "",
                         dn=client.cert_dn or "")


def session_client(client_id: str, node: str) -> Fields:
    return dict(node=node, clientid=client_id, protocol="mqtt")


def conn_info(client: ClientInfo, node: str) -> Fields:
    return dict(node=node, clientid=client.client_id, username=client.username or "",
                       peerhost=client.peer_host, sockport=client.peer_port, proto_name="MQTT",
                       proto_ver=str(client.protocol_level), keepalive=client.keepalive)


def properties(props: dict[str, Any] | None) -> list[Fields]:
    return [{"name": name, "value": value if isinstance(value, str) else str(value)}
            for name, value in (props or {}).items()]


def message(msg, node: str, client: ClientInfo | None = None) -> Fields:
    return _message_fields(message_record(msg, client), node)


def message_record(msg, client: ClientInfo | None = None) -> tuple:
    """What a notification hands over for a message: its parts, made into fields by `request`
    (in the notification sender, not in the worker: about half the cost of a hand-over)."""
    if client is None:
        return msg.qos, msg.topic_name, bytes(msg.payload), msg.timestamp, msg.origin, None, None
    return (msg.qos, msg.topic_name, bytes(msg.payload), msg.timestamp, msg.origin, client.peer_host,
            client.username)


def _message_fields(record: tuple, node: str) -> Fields:
    qos, topic, payload, timestamp, origin, peerhost, username = record
    headers = {"protocol": "mqtt"}
    if peerhost is not None:
        headers["peerhost"] = peerhost
        if username:
            headers["username"] = username
    return {"node": node, "id": f"{_ID_PREFIX}{next(_IDS):016x}", "qos": qos, "topic": topic,
            "payload": payload, "timestamp": int(timestamp * 1000), "headers": headers, "from": origin}


def dropped(returned: pb.Message) -> bool:
    return returned.headers.get("allow_publish") == "false"


def changes(returned: pb.Message, msg) -> dict[str, Any]:
    """The fields of `msg` a returned Message changes (topic, qos, payload)."""
    changed = {}
    if returned.topic and returned.topic != msg.topic_name:
        changed["topic_name"] = returned.topic
    if returned.qos != msg.qos and returned.qos <= 2:
        changed["qos"] = returned.qos
    if returned.payload != msg.payload:
        changed["payload"] = bytes(returned.payload)
    return changed
