"""What an ACL source answers for one (action, topic): allowed or not, and the
per-topic limits VerneMQ's ACL entries carry (`max_qos`, `allowed_retain`,
`max_payload_size`, and publish `modifiers`), applied to each message.

A verdict depends on the topic only, so the ACL cache can keep it; the
limits are checked against every message (`publish_answer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from actormq.hooks.results import OK, Error, Ok

NOT_AUTHORIZED = 0x87
_NONE: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    max_qos: int | None = None
    allowed_retain: bool | None = None
    max_payload_size: int | None = None
    modifiers: Mapping[str, Any] = field(default_factory=lambda: _NONE)
    source: str = ""
    # allowed with no limit and no modifier: every PUBLISH under it is a plain OK
    plain: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plain", self.allowed and self.max_qos is None and self.allowed_retain
                           is None and self.max_payload_size is None and not self.modifiers)


ALLOW = Verdict(True)
DENY = Verdict(False)


def publish_answer(verdict: Verdict, message, disconnect: bool = False) -> Ok | Error:
    """The hook answer for one PUBLISH under a verdict (limits checked, modifiers applied);
    a refusal also disconnects the client with `disconnect` (`acl.deny_action`)."""
    why = _publish_refusal(verdict, message)
    if why:
        return Error(NOT_AUTHORIZED, why, disconnect=disconnect)
    return Ok(**verdict.modifiers) if verdict.modifiers else OK


def _publish_refusal(verdict: Verdict, message) -> str:
    if not verdict.allowed:
        return f"publish to {message.topic_name!r} denied by {verdict.source or 'acl'}"
    if verdict.max_qos is not None and message.qos > verdict.max_qos:
        return f"QoS {message.qos} above the ACL's max_qos {verdict.max_qos}"
    if verdict.allowed_retain is False and message.retain:
        return "retained publish not allowed by the ACL"
    if verdict.max_payload_size is not None and len(message.payload) > verdict.max_payload_size:
        return f"payload above the ACL's max_payload_size {verdict.max_payload_size}"
    return ""


def subscribe_answer(verdict: Verdict, topic_filter: str, options) -> Ok | Error:
    """The hook answer for one subscription filter (a max_qos grants a lower QoS)."""
    if not verdict.allowed:
        return Error(NOT_AUTHORIZED, f"subscribe to {topic_filter!r} denied by {verdict.source or 'acl'}")
    if verdict.max_qos is not None and options is not None and options.qos > verdict.max_qos:
        return Ok(qos=verdict.max_qos)
    return OK


