"""What a hook method answers, and what a chain answers the core.

Decide points (`Mode.DECIDE`) — a hook method returns one of:

- `Ok(**modifiers)` (or the constant `OK`): allowed; the chain ends here.
  Modifiers are the changes the point allows (`HookPoint.modifiers`), e.g.
  at ``client.authenticate``: ``Ok(max_inflight_messages=10, mountpoint="t1",
  superuser=True)``; at ``client.authorize_subscribe``: ``Ok(qos=0)`` grants a
  lower QoS; at ``client.authorize_publish``: ``Ok(topic_name="x", qos=0)``.
  An unknown modifier, or a value of the wrong type, counts as a failure of
  the provider (logged with its name, then its failure policy decides).
- `NEXT` (or ``None``): no opinion; ask the next provider.
- `Error(reason_code, reason="")`: refused; the chain ends here. The MQTT 5
  reason code is sent to the client (CONNACK, SUBACK per filter, PUBACK /
  PUBREC for QoS 1/2, UNSUBACK); 3.1.1 clients get its 3.1.1 mapping.
  Default reason code: 0x87 Not authorized. `Error(..., disconnect=True)` at
  ``client.authorize_publish`` also disconnects the client (5.0: DISCONNECT
  with the reason code), as EMQX's ``acl_deny_action = disconnect``.
- `Continue(auth_data, state=...)`: only at ``client.enhanced_auth``: send an
  AUTH packet (reason 0x18 Continue authentication) with `auth_data` and wait
  for the client's next AUTH; the next step's `AuthExchange.state` is `state`.

The chain's answer to the core is a `Decision` (allowed or not, reason code,
the merged modifiers, which provider decided). If every provider says next,
the point's configured default decides (`plugins.default.<point>`).

Fold points (`Mode.FOLD`) — a hook method returns the new value (a
`Message` made with `modified(message, ...)`), ``None`` for "unchanged", or
`DROP` to drop the message (the core counts it and runs ``message.dropped``
with `DropReason.BY_PLUGIN`). Never mutate the message you were given: the
same object may be shared by every subscriber (encoded once).

Notify points (`Mode.NOTIFY`) — the return value is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

NOT_AUTHORIZED = 0x87
EMPTY: Mapping[str, Any] = MappingProxyType({})


class Ok:
    """Allowed, optionally with modifiers (keyword arguments)."""

    __slots__ = ("modifiers",)

    def __init__(self, **modifiers: Any) -> None:
        self.modifiers: Mapping[str, Any] = MappingProxyType(modifiers) if modifiers else EMPTY

    def __repr__(self) -> str:
        return f"Ok({', '.join(f'{k}={v!r}' for k, v in self.modifiers.items())})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ok) and dict(self.modifiers) == dict(other.modifiers)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.modifiers)))


@dataclass(frozen=True, slots=True)
class Error:
    """Refused with an MQTT 5 reason code and an optional reason string (logged, and
    sent as the MQTT 5 Reason String when the client asked for problem information)."""

    reason_code: int = NOT_AUTHORIZED
    reason: str = ""
    disconnect: bool = False


@dataclass(frozen=True, slots=True)
class Continue:
    """Enhanced authentication goes on: send `auth_data` in an AUTH packet (0x18)."""

    auth_data: bytes = b""
    state: Any = None


class _Next:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEXT"

    def __bool__(self) -> bool:
        return False


class _Drop:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


OK = Ok()
NEXT = _Next()
DROP = _Drop()


@dataclass(frozen=True, slots=True)
class Decision:
    """A decide chain's answer.

    `allowed`: go on (True) or refuse (False). `reason_code`: 0 when allowed,
    else the MQTT 5 reason code to answer with. `modifiers`: the deciding
    provider's modifiers. `decided_by`: the plugin name, ``"default"`` when
    every provider said next, ``""`` when the chain is empty. `auth_data` and
    `state` are set by a `Continue` at ``client.enhanced_auth`` (`more` is
    then True: not decided yet, send AUTH 0x18 and wait).
    """

    allowed: bool
    reason_code: int = 0
    reason: str = ""
    modifiers: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    decided_by: str = ""
    more: bool = False
    auth_data: bytes | None = None
    state: Any = None
    disconnect: bool = False


ALLOWED = Decision(True)


def decision_from(answer: Any, provider: str, allowed_modifiers: frozenset[str]) -> Decision | None:
    """The Decision a provider's answer makes, None for next; TypeError/ValueError
    when the answer is not one a decide hook may give."""
    if answer is None or answer is NEXT:
        return None
    if isinstance(answer, Ok):
        unknown = set(answer.modifiers) - allowed_modifiers
        if unknown:
            raise ValueError(f"modifier(s) {', '.join(sorted(unknown))} not allowed here "
                             f"(allowed: {', '.join(sorted(allowed_modifiers)) or 'none'})")
        return Decision(True, modifiers=answer.modifiers, decided_by=provider)
    if isinstance(answer, Error):
        return Decision(False, int(answer.reason_code), answer.reason, decided_by=provider,
                        disconnect=answer.disconnect)
    if isinstance(answer, Continue) and "auth_data" in allowed_modifiers:
        return Decision(True, decided_by=provider, more=True, auth_data=answer.auth_data,
                        state=answer.state)
    if isinstance(answer, Decision):
        return answer
    raise TypeError(f"a decide hook answers Ok(...), NEXT/None or Error(...), got {answer!r}")


def modified(message, **changes):
    """A copy of a `Message` (or any slotted dataclass value) with some fields changed:
    what a fold hook returns instead of editing the shared message."""
    return replace(message, **changes)
