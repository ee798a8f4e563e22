"""The routed Message: the one value both the actors (which route and deliver
it) and storage (which keeps it in queues and the retained store) know, so
that storage needs nothing from the actors. See `actors/messages.py` for why
it is a plain slotted dataclass and not a frozen one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EMPTY_PROPS: dict = {}


@dataclass(slots=True)
class Message:
    """One application message as routed by the broker (not the PUBLISH packet).

    `properties` holds only the MQTT 5 properties that are forwarded to
    subscribers (payload_format_indicator, content_type, response_topic,
    correlation_data, user_property); `expires_at` is wall-clock time.time()
    seconds or None; `origin` is the publisher's client id (for no-local).
    """

    topic_name: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: dict = field(default_factory=dict)
    expires_at: float | None = None
    timestamp: float = 0.0
    origin: str = ""

    def remaining_expiry(self, now: float) -> int | None:
        """Seconds left of the message expiry interval, None when it never expires."""
        if self.expires_at is None:
            return None
        return max(0, int(self.expires_at - now + 0.999))

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at
