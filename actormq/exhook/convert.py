"""From hook arguments to the fields of ExHook request messages, and from a returned Message back.

The functions here make plain dicts (the keyword arguments of the protobuf
messages, nested messages as dicts): `request(method, fields, meta)` makes
the request of an RPC from them, in the worker for a decision, in the
notification sender for a notification (a dict is far cheaper to make and
hand over than a protobuf message). Field contents follow EMQX 4's `emqx_exhook_handler`: absent strings are
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
    """The request message of RPC `method` (OnClientConnect -> ClientConnectRequest)."""
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
    headers = {"protocol": "mqtt"}
    if client is not None:
        headers["peerhost"] = client.peer_host
        if client.username:
            headers["username"] = client.username
    return {"node": node, "id": f"{_ID_PREFIX}{next(_IDS):016x}", "qos": msg.qos, "topic": msg.topic_name,
            "payload": bytes(msg.payload), "timestamp": int(msg.timestamp * 1000), "headers": headers,
            "from": msg.origin}


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
