"""Reading a VerneMQ webhook's answer: ok (with modifiers) / next / error, checked as VerneMQ does.

`parse_answer(hook, decoded_json, base64_payload)` returns an `Answer`.
Modifiers are checked against VerneMQ's full set per hook
(`vmq_plugin_util:modifiers/1`): an unknown modifier, or one whose value
does not validate, makes the whole answer an error, as in VerneMQ. Checked
modifiers come back converted: payloads decoded to bytes, topics validated,
`client_id` + `mountpoint` only together, subscription rewrites as
(filter, qos[, options]) tuples where a QoS of 128 or more rejects the
filter with that reason code, MQTT 5 `p_*` properties under actormq's names.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from actormq.errors import ProtocolError
from actormq.transport.topics import validate_topic_filter, validate_topic_name
from actormq.webhooks.vmq_bodies import HOOKS, our_property_name


class InvalidAnswer(ValueError):
    """An endpoint's answer that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What an endpoint decided: result "ok", "next" or "error"."""

    result: str
    modifiers: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    unavailable: bool = False  # the endpoint could not be asked or gave no usable answer

    @property
    def ok(self) -> bool:
        return self.result == "ok"


NEXT = Answer("next")


def unavailable(reason: str) -> Answer:
    """The answer that stands for an endpoint that is down, slow, or answered nonsense."""
    return Answer("error", error=reason, unavailable=True)


# ---- value checks: each returns the converted value or raises InvalidAnswer --------------

def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidAnswer(f"expected true/false, got {value!r}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidAnswer(f"expected a number, got {value!r}")
    return round(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidAnswer(f"expected a string, got {value!r}")
    return value


def _qos(value: Any) -> int:
    qos = _int(value)
    if not 0 <= qos <= 2:
        raise InvalidAnswer(f"expected a QoS 0..2, got {value!r}")
    return qos


def _queue_type(value: Any) -> str:
    if value not in ("fifo", "lifo"):
        raise InvalidAnswer(f"expected fifo or lifo, got {value!r}")
    return value


def _validated(validate: Callable[[str], None], what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        try:
            validate(_text(value))
        except ProtocolError as err:
            raise InvalidAnswer(f"bad {what} {value!r}: {err.detail}") from None
        return value
    return check


_topic_name = _validated(validate_topic_name, "topic")
_topic_filter = _validated(validate_topic_filter, "topic filter")


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(_text(value), validate=True)
    except binascii.Error:
        raise InvalidAnswer(f"expected base64, got {value!r}") from None


def _user_properties(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise InvalidAnswer(f"expected a list of {{key, val}}, got {value!r}")
    pairs = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"key", "val"}:
            raise InvalidAnswer(f"expected {{key, val}}, got {item!r}")
        pairs.append((_b64(item["key"]).decode("utf-8", "replace"),
                      _b64(item["val"]).decode("utf-8", "replace")))
    return pairs


def _format_indicator(value: Any) -> int:
    if value not in ("utf8", "undefined", "unspecified"):
        raise InvalidAnswer(f"expected utf8 or undefined, got {value!r}")
    return 1 if value == "utf8" else 0


Check = Callable[[Any], Any]

_REGISTER: dict[str, Check] = {
    "allow_register": _bool, "allow_publish": _bool, "allow_subscribe": _bool,
    "allow_unsubscribe": _bool, "max_message_size": _int, "max_connection_lifetime": _int,
    "username": _text, "clean_session": _bool, "max_message_rate": _int,
    "max_inflight_messages": _int, "shared_subscription_policy": _text, "retry_interval": _int,
    "upgrade_qos": _bool, "max_online_messages": _int, "max_offline_messages": _int,
    "queue_type": _queue_type, "max_drain_time": _int, "max_msgs_per_drain_step": _int,
    "client_id": _text, "mountpoint": _text,
}
_PUBLISH: dict[str, Check] = {"topic": _topic_name, "qos": _qos, "retain": _bool,
                              "mountpoint": _text, "throttle": _int}
_DELIVER: dict[str, Check] = {"topic": _topic_name}
_MESSAGE_PROPERTIES: dict[str, Check] = {
    "p_user_property": _user_properties, "p_content_type": _text,
    "p_payload_format_indicator": _format_indicator, "p_response_topic": _topic_name,
    "p_correlation_data": lambda v: _text(v).encode(),
}
_PROPERTIES: dict[str, dict[str, Check]] = {
    "auth_on_register_m5": {"p_user_property": _user_properties,
                            "p_session_expiry_interval": _int},
    "auth_on_publish_m5": {**_MESSAGE_PROPERTIES, "p_message_expiry_interval": _int,
                           "p_will_delay_interval": _int},
    "on_deliver_m5": _MESSAGE_PROPERTIES,
    "on_auth_m5": {"p_authentication_method": _text, "p_authentication_data": _b64},
}
_MODIFIERS: dict[str, dict[str, Check]] = {
    "auth_on_register": _REGISTER, "auth_on_register_m5": _REGISTER,
    "auth_on_publish": _PUBLISH, "auth_on_publish_m5": _PUBLISH,
    "on_deliver": _DELIVER, "on_deliver_m5": _DELIVER,
    "on_auth_m5": {"reason_code": _int},
}
_PAYLOAD_HOOKS = frozenset({"auth_on_publish", "auth_on_publish_m5", "on_deliver", "on_deliver_m5"})
_TOPICS_AT_TOP = frozenset({"auth_on_subscribe", "on_unsubscribe"})
_TOPICS_IN_MODIFIERS = frozenset({"auth_on_subscribe_m5", "on_unsubscribe_m5"})
_RETAIN_HANDLING = {"send_retain": 0, "send_if_new_sub": 1, "dont_send": 2}


def _subscription(item: Any, mqtt5: bool) -> tuple:
    if not isinstance(item, dict) or "topic" not in item or "qos" not in item:
        raise InvalidAnswer(f"expected {{topic, qos}}, got {item!r}")
    topic_filter, qos = _topic_filter(item["topic"]), _int(item["qos"])
    if qos >= 0x80:
        return (topic_filter, qos)
    if qos > 2:
        raise InvalidAnswer(f"expected a QoS 0..2 or a reason code >= 128, got {qos}")
    if not mqtt5:
        return (topic_filter, qos)
    handling = item.get("retain_handling", "send_retain")
    if handling not in _RETAIN_HANDLING:
        raise InvalidAnswer(f"bad retain_handling {handling!r}")
    options = {"no_local": _bool(item.get("no_local", False)), "rap": _bool(item.get("rap", False)),
               "retain_handling": _RETAIN_HANDLING[handling]}
    return (topic_filter, qos, options)


def _topics(hook: str, value: Any) -> list:
    if not isinstance(value, list):
        raise InvalidAnswer(f"{hook}: topics must be a list, got {value!r}")
    if hook.startswith("on_unsubscribe"):
        return [_topic_filter(item) for item in value]
    return [_subscription(item, hook.endswith("_m5")) for item in value]


def _properties(hook: str, value: Any) -> dict[str, Any]:
    allowed = _PROPERTIES.get(hook, {})
    if not isinstance(value, dict):
        raise InvalidAnswer(f"{hook}: properties must be an object, got {value!r}")
    checked = {}
    for key, item in value.items():
        if key not in allowed:
            raise InvalidAnswer(f"{hook}: property {key!r} may not be modified")
        checked[our_property_name(key)] = allowed[key](item)
    return checked


def check_modifiers(hook: str, modifiers: Any, base64_payload: bool = True) -> dict[str, Any]:
    """VerneMQ's modifier check for `hook`; raises InvalidAnswer naming the bad modifier."""
    if modifiers is None or modifiers == []:
        modifiers = {}
    if not isinstance(modifiers, dict):
        raise InvalidAnswer(f"{hook}: modifiers must be an object, got {modifiers!r}")
    allowed = _MODIFIERS.get(hook, {})
    checked: dict[str, Any] = {}
    for key, value in modifiers.items():
        if key == "payload" and hook in _PAYLOAD_HOOKS:
            checked[key] = _b64(value) if base64_payload else _text(value).encode()
        elif key == "properties" and hook in _PROPERTIES:
            checked[key] = _properties(hook, value)
        elif key == "topics" and hook in _TOPICS_IN_MODIFIERS:
            checked[key] = _topics(hook, value)
        elif key in allowed:
            try:
                checked[key] = allowed[key](value)
            except InvalidAnswer as err:
                raise InvalidAnswer(f"{hook}: modifier {key!r}: {err}") from None
        else:
            raise InvalidAnswer(f"{hook}: {key!r} is not a modifier of this hook")
    if hook.startswith("auth_on_register") and ("client_id" in checked) != ("mountpoint" in checked):
        raise InvalidAnswer(f"{hook}: client_id and mountpoint must be modified together")
    return checked


def parse_answer(hook: str, decoded: Any, base64_payload: bool = True) -> Answer:
    """The Answer in a decoded JSON body; raises InvalidAnswer when it is not one."""
    if not HOOKS[hook].decides:
        return NEXT
    if not isinstance(decoded, dict) or "result" not in decoded:
        raise InvalidAnswer(f"{hook}: the answer has no \"result\"")
    result = decoded["result"]
    if result == "next":
        return NEXT
    if isinstance(result, dict):
        return Answer("error", error=str(result.get("error", "unknown_error")))
    if result != "ok":
        raise InvalidAnswer(f"{hook}: unknown result {result!r}")
    if hook in _TOPICS_AT_TOP:
        topics = decoded.get("topics")
        return Answer("ok", {} if topics is None else {"topics": _topics(hook, topics)})
    return Answer("ok", check_modifiers(hook, decoded.get("modifiers", {}), base64_payload))
