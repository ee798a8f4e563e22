"""The 22 VerneMQ webhooks and the JSON bodies they POST, exactly as `vmq_webhooks` sends them.

`HOOKS` names every hook with the fields of its body in VerneMQ's order and
whether it is a decision (`all_till_ok` in VerneMQ: the answer counts) or a
notification (`all`: the answer is ignored). `build_body` turns an event
mapping with those field names (payload as bytes, topics as (filter, qos)
pairs, MQTT 5 properties by actormq's snake_case names) into the body:
payload base64 unless the endpoint says otherwise, properties as `p_*` keys,
user properties and authentication data base64 as VerneMQ does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping

_CONNECT = ("peer_addr", "peer_port", "mountpoint", "client_id", "username")
_CLIENT = ("username", "mountpoint", "client_id")
_MESSAGE = _CLIENT + ("qos", "topic", "payload", "retain")
_SUBSCRIBE = _CLIENT + ("topics",)
_SESSION = ("mountpoint", "client_id")


@dataclass(frozen=True, slots=True)
class HookSpec:
    """One VerneMQ hook: its body fields in order and whether its answer decides."""

    name: str
    fields: tuple[str, ...]
    decides: bool

    @property
    def cacheable(self) -> bool:
        return self.name.startswith("auth_on_")

    @property
    def mqtt5(self) -> bool:
        return self.name.endswith("_m5")


def _hooks(*specs: tuple[str, tuple[str, ...], bool]) -> dict[str, HookSpec]:
    return {name: HookSpec(name, fields, decides) for name, fields, decides in specs}


HOOKS: dict[str, HookSpec] = _hooks(
    ("auth_on_register", _CONNECT + ("password", "clean_session"), True),
    ("auth_on_publish", _MESSAGE, True),
    ("auth_on_subscribe", _SUBSCRIBE, True),
    ("on_register", _CONNECT, False),
    ("on_publish", _MESSAGE, False),
    ("on_subscribe", _SUBSCRIBE, False),
    ("on_unsubscribe", _SUBSCRIBE, True),
    ("on_deliver", _MESSAGE + ("properties",), True),
    ("on_offline_message", _SESSION + ("qos", "topic", "payload", "retain"), False),
    ("on_client_wakeup", _SESSION, False),
    ("on_client_offline", _SESSION, False),
    ("on_client_gone", _SESSION, False),
    ("on_session_expired", _SESSION, False),
    ("auth_on_register_m5", _CONNECT + ("password", "clean_start", "properties"), True),
    ("auth_on_publish_m5", _MESSAGE + ("properties",), True),
    ("auth_on_subscribe_m5", _SUBSCRIBE + ("properties",), True),
    ("on_register_m5", _CONNECT + ("properties",), False),
    ("on_publish_m5", _MESSAGE + ("properties",), False),
    ("on_subscribe_m5", _SUBSCRIBE + ("properties",), False),
    ("on_unsubscribe_m5", _SUBSCRIBE + ("properties",), True),
    ("on_deliver_m5", _MESSAGE + ("properties",), True),
    ("on_auth_m5", _CLIENT + ("properties",), True),
)

# actormq's property names -> VerneMQ's `p_*` names where they are not simply "p_" + name.
_P_NAMES = {
    "subscription_identifier": "p_subscription_id",
    "assigned_client_identifier": "p_assigned_client_id",
    "request_problem_information": "p_request_problem_info",
    "request_response_information": "p_request_response_info",
    "response_information": "p_response_info",
    "server_reference": "p_server_ref",
    "receive_maximum": "p_receive_max",
    "topic_alias_maximum": "p_topic_alias_max",
    "maximum_qos": "p_max_qos",
    "maximum_packet_size": "p_max_packet_size",
    "wildcard_subscription_available": "p_wildcard_subs_available",
    "subscription_identifier_available": "p_sub_ids_available",
    "shared_subscription_available": "p_shared_subs_available",
}
OUR_PROPERTY_NAMES = {p_name: name for name, p_name in _P_NAMES.items()}


def p_name(name: str) -> str:
    """VerneMQ's key for one of actormq's MQTT 5 property names."""
    return _P_NAMES.get(name) or "p_" + name


def our_property_name(p_key: str) -> str:
    """actormq's property name for a VerneMQ `p_*` key."""
    return OUR_PROPERTY_NAMES.get(p_key) or p_key[2:]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def text_or_b64(data: bytes | str, base64_payload: bool) -> str:
    """A payload as VerneMQ puts it in JSON: base64, or the text itself when base64 is off."""
    if isinstance(data, str):
        return b64(data.encode()) if base64_payload else data
    return b64(data) if base64_payload else bytes(data).decode("utf-8", "replace")


def encode_properties(properties: Mapping[str, Any] | None) -> dict[str, Any]:
    """MQTT 5 properties as VerneMQ's JSON object of `p_*` keys."""
    encoded: dict[str, Any] = {}
    for name, value in (properties or {}).items():
        if name == "user_property":
            value = [{"key": b64(k.encode()), "val": b64(v.encode())} for k, v in value]
        elif name == "authentication_data":
            value = b64(value)
        elif name == "payload_format_indicator":
            value = "utf8" if value else "unspecified"
        elif isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", "replace")
        encoded[p_name(name)] = value
    return encoded


def _topic_entry(entry: tuple) -> dict[str, Any]:
    topic_filter, qos = entry[0], entry[1]
    item: dict[str, Any] = {"topic": topic_filter, "qos": qos}
    if len(entry) > 2 and entry[2]:
        options = entry[2]
        item["no_local"] = bool(options.get("no_local", False))
        item["rap"] = bool(options.get("rap", False))
        item["retain_handling"] = options.get("retain_handling", "send_retain")
    return item


def build_body(hook: str, event: Mapping[str, Any], base64_payload: bool = True,
               no_payload: bool = False) -> dict[str, Any]:
    """The JSON body (as a dict, keys in VerneMQ's order) of `hook` for `event`."""
    spec = HOOKS[hook]
    body: dict[str, Any] = {}
    for field in spec.fields:
        value = event.get(field)
        if field == "payload":
            if no_payload and spec.cacheable:
                continue
            value = text_or_b64(value or b"", base64_payload)
        elif field == "properties":
            value = encode_properties(value)
        elif field == "topics":
            value = ([_topic_entry(entry) for entry in value] if hook not in _UNSUBSCRIBE
                     else list(value))
        elif field in ("mountpoint",) and value is None:
            value = ""
        elif field in ("retain", "clean_session", "clean_start"):
            value = bool(value)
        elif isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", "replace")
        body[field] = value
    return body


_UNSUBSCRIBE = frozenset({"on_unsubscribe", "on_unsubscribe_m5"})
