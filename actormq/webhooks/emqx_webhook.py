"""The EMQX 4 web hook (`emqx_web_hook`): rules from the config and the JSON body of each event.

`WebHookConfig.from_config` reads `web.hook.url` (or 4.0's `web.hook.api.url`),
`web.hook.headers.<name>`, the payload encoding and the rules
`web.hook.rule.<event>.<n> = {"action": "on_<event>", "topic": "<filter>"}`.
`WebHookConfig.body(event, data)` is the body to POST for an event, or None
when no rule of that event matches: the events that carry a topic are sent
when any of their rules has no filter or a filter matching the topic;
`$SYS/` messages are never sent. Bodies have the 4.x fields (the `action`,
`clientid`, `username` ("undefined" when absent), ...).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Mapping

from actormq.conf.areas.webhooks import EMQX_EVENTS
from actormq.errors import ConfigError, ProtocolError
from actormq.transport.topics import matches, validate_topic_filter
from actormq.webhooks import base62

_TOPIC_EVENTS = frozenset({"client.subscribe", "client.unsubscribe", "session.subscribed",
                           "session.unsubscribed", "message.publish", "message.delivered",
                           "message.acked", "message.dropped"})
_CONN = ("clientid", "username", "ipaddress", "keepalive", "proto_ver")
_MESSAGE = ("from_client_id", "from_username", "topic", "qos", "retain", "payload", "ts")
_FIELDS: dict[str, tuple[str, ...]] = {
    "client.connect": _CONN,
    "client.connack": _CONN + ("conn_ack",),
    "client.connected": _CONN + ("connected_at",),
    "client.disconnected": ("clientid", "username", "reason"),
    "client.subscribe": ("clientid", "username", "topic", "opts"),
    "client.unsubscribe": ("clientid", "username", "topic"),
    "session.subscribed": ("clientid", "username", "topic", "opts"),
    "session.unsubscribed": ("clientid", "username", "topic"),
    "session.terminated": ("clientid", "username", "reason"),
    "message.publish": _MESSAGE,
    "message.delivered": ("clientid", "username") + _MESSAGE,
    "message.acked": ("clientid", "username") + _MESSAGE,
    "message.dropped": _MESSAGE + ("reason",),
}
_ENCODERS = {
    "plain": lambda data: data.decode("utf-8", "replace"),
    "base64": lambda data: base64.b64encode(data).decode("ascii"),
    "base62": base62.encode,
}


def action_of(event: str) -> str:
    """The body's action of an event: "client.connected" -> "client_connected"."""
    return event.replace(".", "_")


@dataclass(frozen=True, slots=True)
class Rule:
    event: str
    topic: str | None


def _parse_rule(key: str, text: str) -> Rule:
    event = key[len("web.hook.rule."):].rsplit(".", 1)[0]
    try:
        spec = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"a rule is JSON like {{\"action\": \"on_{action_of(event)}\"}}: {err}",
                          key=key) from None
    if not isinstance(spec, dict) or spec.get("action") != "on_" + action_of(event):
        raise ConfigError(f"expected {{\"action\": \"on_{action_of(event)}\", ...}}, got {text}", key=key)
    topic = spec.get("topic")
    if topic is not None:
        if event not in _TOPIC_EVENTS:
            raise ConfigError(f"{event} carries no topic, so a rule for it takes no topic filter", key=key)
        try:
            validate_topic_filter(topic if isinstance(topic, str) else "")
        except ProtocolError as err:
            raise ConfigError(f"bad topic filter {topic!r}: {err.detail}", key=key) from None
    return Rule(event, topic)


@dataclass(frozen=True, slots=True)
class WebHookConfig:
    url: str
    headers: Mapping[str, str]
    encoding: str
    rules: Mapping[str, tuple[Rule, ...]]
    timeout_s: float = 5.0

    @classmethod
    def from_config(cls, config) -> "WebHookConfig | None":
        """The web hook of the config, or None when no URL is set."""
        url = config["web.hook.url"] or config["web.hook.api.url"]
        if not url:
            return None
        headers = dict(config.section("web.hook.headers.")) or {"content-type": "application/json"}
        encoding = config["web.hook.body.encoding_of_payload_field"]
        if config.source("web.hook.body.encoding_of_payload_field") == "default":
            encoding = config["web.hook.encode_payload"]
        rules: dict[str, list[Rule]] = {}
        for name, text in sorted(config.section("web.hook.rule.").items()):
            rule = _parse_rule("web.hook.rule." + name, text)
            rules.setdefault(rule.event, []).append(rule)
        return cls(url, headers, encoding, {event: tuple(r) for event, r in rules.items()},
                   float(config["web.hook.request_timeout"]))

    def events(self) -> set[str]:
        return set(self.rules)

    def wants(self, event: str, topic: str | None = None) -> bool:
        """Whether a rule of `event` matches (its topic, for the events that carry one)."""
        rules = self.rules.get(event)
        if not rules:
            return False
        if topic is None:
            return True
        if topic.startswith("$SYS/"):
            return False
        return any(rule.topic is None or matches(rule.topic, topic) for rule in rules)

    def body(self, event: str, data: Mapping[str, Any], node: str = "") -> dict[str, Any]:
        """The JSON body of `event` for `data` (fields by their 4.x names; payload as bytes)."""
        body: dict[str, Any] = {"action": action_of(event)}
        if node:
            body["node"] = node
        for name in _FIELDS[event]:
            value = data.get(name)
            if name in ("username", "from_username") and value is None:
                value = "undefined"
            elif name == "payload":
                value = _ENCODERS[self.encoding](bytes(value or b""))
            elif name == "retain":
                value = bool(value)
            body[name] = value
        return body


assert set(_FIELDS) == set(EMQX_EVENTS)
