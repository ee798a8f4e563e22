"""The effects a Channel returns: what the Connection is to do, as plain
values (frozen, slotted). The Connection carries each out (`execute`);
nothing here does I/O.

- `Send(packet)` / `SendBytes(data)`: write a packet / bytes already encoded.
- `Close(reason_code, reason)`: the server closes the connection: DISCONNECT
  with the reason code first in 5.0 once a session is open, then close
  (reason_code 0: close without a word, as when no CONNECT came in time).
- `Refuse(reply)`: answer a CONNECT (or a broken first packet) with `reply`
  (a CONNACK packet, or 3.1.1's raw refusal) and close.
- `Accept(connect, assigned)`: the CONNECT passed the protocol's checks; bans,
  authentication and the hook chain decide next, then the session opens
  (with `assigned`: the client id the server made up).
- `AskHooks(packet)`: hand an AUTH packet to the enhanced authentication chain.
- `channel.Disconnected`: the client's DISCONNECT: session expiry and will
  as it decides, then close.
- a packet itself (PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE,
  UNSUBSCRIBE): for the session: route the (alias-resolved) PUBLISH,
  update the in-flight state, the subscriptions. Returning the packet
  itself keeps the hot path free of allocations.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Send:
    packet: object


@dataclass(frozen=True, slots=True)
class SendBytes:
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    reason_code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Refuse:
    reply: object           # a Connack, or bytes
    client_id: str | None = None    # a refused CONNECT's (for the log)


@dataclass(frozen=True, slots=True)
class Accept:
    connect: object
    assigned: str | None


@dataclass(frozen=True, slots=True)
class AskHooks:
    packet: object


PINGRESP = SendBytes(b"\xd0\x00")
V311_UNACCEPTABLE_PROTOCOL = Refuse(b"\x20\x02\x00\x01")
CLOSE_SILENTLY = Close(0, "no CONNECT in time")
