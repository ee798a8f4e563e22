"""What a hook receives: the client it is about, an enhanced-auth step, why a
message was dropped. (Messages are `actormq.actors.messages.Message`,
subscription options `actormq.actors.messages.SubOptions`.)

Every value here is immutable: a plugin that wants a change answers with
modifiers (decide) or a new value (fold), it never edits what it was given.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """One client as the hooks see it, built once at CONNECT.

    `protocol_level` is 3 (MQTT 3.1), 4 (3.1.1) or 5; `listener` is the name
    of the listener it came in on ("default" for the main one) and
    `mountpoint` that listener's mountpoint ("" for none). `cert_cn` and
    `cert_dn` are the subject common name / distinguished name of the client
    certificate on a TLS listener with client certificates, else None.
    `properties` are the CONNECT's MQTT 5 properties (snake_case names).
    `superuser` is set when the authenticating provider said so (modifier
    `superuser=True`); authorization providers may then skip their checks.
    """

    client_id: str
    username: str | None = None
    password: bytes | None = None
    peer_host: str = ""
    peer_port: int = 0
    protocol_level: int = 4
    clean_start: bool = True
    keepalive: int = 0
    listener: str = "default"
    mountpoint: str = ""
    cert_cn: str | None = None
    cert_dn: str | None = None
    properties: dict = field(default_factory=dict)
    superuser: bool = False

    @property
    def protocol(self) -> str:
        """The protocol name and version as users write it: "MQTT 3.1", "MQTT 3.1.1", "MQTT 5.0"."""
        return {3: "MQTT 3.1", 4: "MQTT 3.1.1", 5: "MQTT 5.0"}.get(self.protocol_level, "MQTT")

    @property
    def peer(self) -> str:
        return f"{self.peer_host}:{self.peer_port}"

    def evolve(self, **changes) -> "ClientInfo":
        """A copy with some fields changed (client id after a modifier, superuser, ...)."""
        return replace(self, **changes)


class _Filling:
    """A ClientInfo being filled in: its slots (the same layout) without the frozen
    dataclass's `__setattr__`, so that each field is one plain store where
    ``ClientInfo(...)`` makes 14 calls of `object.__setattr__`."""

    __slots__ = ClientInfo.__slots__


def connect_client_info(client_id: str, username: str | None, password: bytes | None, peer_host: str,
                        peer_port: int, protocol_level: int, clean_start: bool, keepalive: int,
                        listener: str, mountpoint: str, cert_cn: str | None, cert_dn: str | None,
                        properties: dict) -> ClientInfo:
    """``ClientInfo(...)`` of these fields (superuser False), made at a fifth of the cost:
    the one a CONNECT makes when a plugin hooks it. Filled in as a `_Filling`, then made the
    frozen ClientInfo it is from then on."""
    info = _Filling()
    info.client_id = client_id
    info.username = username
    info.password = password
    info.peer_host = peer_host
    info.peer_port = peer_port
    info.protocol_level = protocol_level
    info.clean_start = clean_start
    info.keepalive = keepalive
    info.listener = listener
    info.mountpoint = mountpoint
    info.cert_cn = cert_cn
    info.cert_dn = cert_dn
    info.properties = properties
    info.superuser = False
    info.__class__ = ClientInfo
    return info


@dataclass(frozen=True, slots=True)
class AuthExchange:
    """One step of MQTT 5 enhanced authentication (CONNECT or AUTH packets).

    `method` is the Authentication Method, `data` the client's Authentication
    Data of this step (None when it sent none), `step` counts the client's
    packets in this exchange from 1 (the CONNECT), and `reauth` is True when
    a connected client started re-authentication (AUTH with reason 0x19).
    `state` is what the provider returned as `Continue(state=...)` at the
    previous step (None at step 1): where the provider keeps its progress.
    """

    method: str
    data: bytes | None = None
    step: int = 1
    reauth: bool = False
    state: object = None


class DropReason(enum.Enum):
    """Why a message was dropped (the `reason` of `message.dropped`)."""

    QUEUE_FULL = "queue_full"
    EXPIRED = "expired"
    NO_SUBSCRIBERS = "no_subscribers"
    NOT_AUTHORIZED = "not_authorized"
    BY_PLUGIN = "dropped_by_plugin"
    TOO_LARGE = "too_large"
