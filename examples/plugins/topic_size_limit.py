"""Reject publishes whose payload is larger than the limit of their topic prefix.

    plugins.paths = examples/plugins
    plugins.order = topic_size_limit
    plugin.topic_size_limit.limits = sensors/=1KB, camera/=2MB
    plugin.topic_size_limit.default = 256KB

The longest matching prefix decides; a topic no prefix matches gets
`default` (0 = no limit). A refused QoS 1/2 publish is answered with reason
code 0x97 (Quota exceeded) and a reason string naming the limit; a QoS 0 one
is dropped (and counted by ``message.dropped`` observers).
"""

from __future__ import annotations

from actormq.conf.keytypes import Key, Kind
from actormq.hooks import NEXT, Error, Plugin

QUOTA_EXCEEDED = 0x97
_SIZE = Key("size", Kind.BYTESIZE, "0", "")


def parse_limits(text: str) -> list[tuple[str, int]]:
    """"prefix=size, ..." → [(prefix, bytes)], longest prefix first (ValueError if malformed)."""
    limits = []
    for item in text.split(","):
        if not item.strip():
            continue
        prefix, equals, size = item.partition("=")
        if not equals or not prefix.strip():
            raise ValueError(f"expected prefix=size, got {item.strip()!r}")
        limits.append((prefix.strip(), _SIZE.parse(size)))
    return sorted(limits, key=lambda limit: -len(limit[0]))


def limit_for(limits: list[tuple[str, int]], default: int, topic: str) -> int:
    for prefix, size in limits:
        if topic.startswith(prefix):
            return size
    return default


class TopicSizeLimit(Plugin):
    """Rejects publishes larger than the limit of their topic prefix."""

    name = "topic_size_limit"
    config_schema = (
        Key("limits", Kind.STR, "", "Comma-separated prefix=size pairs, e.g. sensors/=1KB, camera/=2MB."),
        Key("default", Kind.BYTESIZE, "0", "Limit of topics no prefix matches (0 = none)."),
    )

    def start(self) -> None:
        self.limits = parse_limits(self.settings["limits"])

    def on_client_authorize_publish(self, client, message):
        limit = limit_for(self.limits, self.settings["default"], message.topic_name)
        if limit and len(message.payload) > limit:
            return Error(QUOTA_EXCEEDED, f"payload of {len(message.payload)} bytes is over the "
                                         f"{limit} bytes allowed on {message.topic_name}")
        return NEXT
