"""The protocol rules of one client, with no I/O (EMQX's channel, VerneMQ's
fsm): packets and events in, effects out as values (`effects`). The
Connection carries them out; nothing here touches a socket, a loop, a clock
or a log.

`Channel` is the per-client core: `handle(packet)` takes each decoded packet
and returns one effect; `on_keepalive_expired`, `on_taken_over` and
`on_protocol_error` take the events; `accept_session` grants a CONNECT's
keepalive, session expiry and CONNACK properties. It keeps the client's
protocol state: version, limits, topic aliases, keepalive, session expiry.

Owns: CONNECT validation (`check_connect`: every refusal of 3.1.1 and 5.0
that needs no broker state), what the client's CONNECT asks of us
(`client_limits`), CONNACK negotiation (`negotiated_keepalive`,
`session_expiry`, `connack_properties`), topic aliases in both directions
(`InboundAliases`, `OutboundAliases`), the DISCONNECT rule (`on_disconnect`:
session expiry and the will), the will delay (`will_delay`) and reason strings bounded or left out
(`encode_with_reason`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from actormq.actors import effects
from actormq.errors import ProtocolError
from actormq.transport.codec import (Auth, Connack, Connect, Disconnect, Pingreq, Puback, Pubcomp,
                                     Publish, Pubrec, Pubrel, ReasonCode, Subscribe, Unsubscribe,
                                     encode)
from actormq.transport.topics import validate_topic_name

SESSION_NEVER_EXPIRES = 0xFFFFFFFF
MAX_REASON_STRING = 256     # characters of a reason string we send
MAX_PACKET = 268_435_460    # the largest packet MQTT can frame


# -- CONNECT ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What a 5.0 client's CONNECT asks of the server (3.1.1: the defaults)."""

    receive_maximum: int = 65535
    maximum_packet_size: int = 0        # 0 = none
    problem_information: bool = True
    topic_alias_maximum: int = 0


def client_limits(props: dict) -> ClientLimits:
    """The limits of a CONNECT's properties; 0 for receive maximum or maximum
    packet size is a protocol error [MQTT-3.1.2-19, MQTT-3.1.2-24]."""
    if props.get("receive_maximum", 1) == 0 or props.get("maximum_packet_size", 1) == 0:
        raise ProtocolError(ReasonCode.PROTOCOL_ERROR, "receive maximum / maximum packet size of 0")
    return ClientLimits(props.get("receive_maximum", 65535), props.get("maximum_packet_size", 0),
                        props.get("request_problem_information", 1) == 1,
                        props.get("topic_alias_maximum", 0))


@dataclass(frozen=True, slots=True)
class ConnectVerdict:
    """refusal: the CONNACK reason code (0: go on); assigned: the client id the
    server made up for an empty one."""

    refusal: int = 0
    assigned: str | None = None


def check_connect(packet: Connect, settings, protocol_versions, enhanced_auth: bool) -> ConnectVerdict:
    """The refusals a CONNECT earns on its own (bans and authentication need the
    broker and come after). The reason codes are 5.0's; `connack` maps them to
    3.1.1's return codes."""
    v5 = packet.protocol_level == 5
    if packet.protocol_level not in protocol_versions:
        return ConnectVerdict(ReasonCode.UNSUPPORTED_PROTOCOL_VERSION)
    if v5 and packet.properties.get("authentication_method") and not enhanced_auth:
        return ConnectVerdict(ReasonCode.BAD_AUTHENTICATION_METHOD)
    assigned = None
    if not packet.client_id:
        if not settings.allow_empty_client_id or (not v5 and not packet.clean_start):
            return ConnectVerdict(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID)
        assigned = f"auto-{uuid.uuid4().hex}"
    elif len(packet.client_id) > settings.max_client_id_len:
        return ConnectVerdict(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID)
    will = packet.will
    if will is not None:
        try:
            validate_topic_name(will.topic_name)
        except ProtocolError:
            return ConnectVerdict(ReasonCode.TOPIC_NAME_INVALID)
        if will.retain and not settings.retain_available:
            return ConnectVerdict(ReasonCode.RETAIN_NOT_SUPPORTED)
        if will.qos > settings.max_qos:
            return ConnectVerdict(ReasonCode.QOS_NOT_SUPPORTED)
    return ConnectVerdict(0, assigned)


def negotiated_keepalive(requested: int, settings) -> int:
    """The keepalive the server holds the client to (5.0 tells it in the CONNACK)."""
    if settings.server_keepalive:
        return settings.server_keepalive
    return min(requested, settings.max_keepalive)


_DEADLINES: dict[float, float] = {}     # clients of one keepalive share its deadline
_DEADLINES_KEPT = 1024


def keepalive_deadline(keepalive: int, multiplier: float) -> float:
    """Seconds of silence allowed: `keepalive` times the multiplier, a float object
    shared by the connections that have it (24 bytes less per connected client)."""
    deadline = keepalive * multiplier
    shared = _DEADLINES.get(deadline)
    if shared is None:
        if len(_DEADLINES) >= _DEADLINES_KEPT:
            return deadline
        shared = _DEADLINES[deadline] = deadline
    return shared


def cap_expiry(interval: int | None, settings) -> int | None:
    """A session expiry interval within `mqtt.max_session_expiry_interval`; None = never."""
    if interval == SESSION_NEVER_EXPIRES:
        interval = None
    cap = settings.max_session_expiry_interval
    if cap and (interval is None or interval > cap):
        return cap
    return interval


def session_expiry(connect: Connect, settings) -> int | None:
    """Seconds the session outlives its connection; None = never expires. 3.1.1:
    0 for a clean session, else `persistent_client_expiration` (0 = never)."""
    if connect.protocol_level == 5:
        return cap_expiry(connect.properties.get("session_expiry_interval", 0), settings)
    if connect.clean_start:
        return 0
    return settings.persistent_client_expiration or None


def connack_properties(packet: Connect, assigned: str | None, expiry: int | None, settings) -> dict:
    """The 5.0 CONNACK properties: what the server grants where it differs from
    what the client asked or assumes ({} for 3.1.1)."""
    if packet.protocol_level != 5:
        return {}
    props: dict = {}
    if assigned:
        props["assigned_client_identifier"] = assigned
    if settings.receive_maximum != 65535:
        props["receive_maximum"] = settings.receive_maximum
    if settings.max_qos < 2:
        props["maximum_qos"] = settings.max_qos
    if not settings.retain_available:
        props["retain_available"] = 0
    props["maximum_packet_size"] = settings.max_packet_size
    props["topic_alias_maximum"] = settings.topic_alias_maximum
    if not settings.wildcard_subscription_available:
        props["wildcard_subscription_available"] = 0
    if not settings.subscription_identifier_available:
        props["subscription_identifier_available"] = 0
    if not settings.shared_subscription_available:
        props["shared_subscription_available"] = 0
    keepalive = negotiated_keepalive(packet.keepalive, settings)
    if keepalive != packet.keepalive:
        props["server_keep_alive"] = keepalive
    granted = SESSION_NEVER_EXPIRES if expiry is None else expiry
    if packet.properties.get("session_expiry_interval", 0) != granted:
        props["session_expiry_interval"] = granted
    return props


# -- topic aliases -----------------------------------------------------------------------

class InboundAliases:
    """The topic aliases a client set on its PUBLISHes (up to the server's maximum)."""

    __slots__ = ("maximum", "topics")

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.topics: dict[int, str] = {}

    def resolve(self, topic: str, alias: int) -> str:
        """The topic name of a PUBLISH carrying alias; a topic name sets the alias."""
        if alias == 0 or alias > self.maximum:
            raise ProtocolError(ReasonCode.TOPIC_ALIAS_INVALID, f"topic alias {alias} out of range")
        if topic:
            self.topics[alias] = topic
            return topic
        known = self.topics.get(alias)
        if known is None:
            raise ProtocolError(ReasonCode.PROTOCOL_ERROR, f"unknown topic alias {alias}")
        return known


class OutboundAliases:
    """The topic aliases the server sets on PUBLISHes to a client that allows them:
    the first `maximum` topics each get one, for the life of the connection."""

    __slots__ = ("maximum", "aliases")

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.aliases: dict[str, int] = {}

    def lookup(self, topic: str) -> tuple[int | None, bool]:
        """(alias, new): the alias to send for topic (None: none left), and whether
        it is new, so the topic name goes with it; `learned` records a sent one."""
        alias = self.aliases.get(topic)
        if alias is not None:
            return alias, False
        if len(self.aliases) < self.maximum:
            return len(self.aliases) + 1, True
        return None, False

    def learned(self, topic: str, alias: int) -> None:
        self.aliases[topic] = alias


# -- DISCONNECT ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Disconnected:
    """What a client's DISCONNECT decides: the session expiry from now on
    (`expiry_changed` False: as set at CONNECT), whether the will is kept
    (reason 0x04) and the reason for the connection log."""

    expiry_changed: bool
    expiry: int | None
    keep_will: bool
    close_reason: str


def on_disconnect(packet: Disconnect, connect_expiry: int | None, settings) -> Disconnected:
    """A session expiry of 0 at CONNECT cannot be raised on DISCONNECT [MQTT-3.14.2-2]."""
    interval = packet.properties.get("session_expiry_interval") if packet.properties else None
    changed = interval is not None
    expiry = connect_expiry
    if changed:
        if connect_expiry == 0 and interval != 0:
            raise ProtocolError(ReasonCode.PROTOCOL_ERROR,
                                "session expiry set on DISCONNECT after 0 on CONNECT")
        expiry = cap_expiry(interval, settings)
    if packet.reason_code == ReasonCode.DISCONNECT_WITH_WILL_MESSAGE:
        return Disconnected(changed, expiry, True, "disconnect with will message")
    return Disconnected(changed, expiry, False, "normal disconnect")


def will_delay(will, version: int, expiry: int | None) -> int:
    """Seconds after the connection is lost that the will is published: its will
    delay (5.0), never past the session's end [MQTT-3.1.3-9]; 0 = at once."""
    delay = will.properties.get("will_delay_interval", 0) if version == 5 else 0
    return delay if expiry is None else min(delay, expiry)


# -- reason strings --------------------------------------------------------------------------

def encode_with_reason(packet, version: int, problem_information: bool, maximum_packet_size: int) -> bytes:
    """The packet with its reason string bounded, or without its reason string and
    user properties when the client asked for no problem information (CONNACK
    and DISCONNECT keep them) or they would not fit its maximum packet size
    [MQTT-3.1.2-29, MQTT-3.2.2-19]."""
    props = packet.properties
    if not problem_information and not isinstance(packet, (Connack, Disconnect)):
        return encode(without_diagnostics(packet), version)
    text = props["reason_string"]
    if len(text) > MAX_REASON_STRING:
        text = text[:MAX_REASON_STRING - 3] + "..."
        packet = replace(packet, properties={**props, "reason_string": text})
    data = encode(packet, version)
    if len(data) > (maximum_packet_size or MAX_PACKET):
        data = encode(without_diagnostics(packet), version)
    return data


def without_diagnostics(packet):
    """The packet without its reason string and user properties."""
    return replace(packet, properties={k: v for k, v in packet.properties.items()
                                       if k not in ("reason_string", "user_property")})


def reason(text: str, problem_information: bool) -> dict:
    """The properties carrying a reason string, when the client wants one."""
    return {"reason_string": text} if text and problem_information else {}


# -- the per-client core ---------------------------------------------------------------------

KEEPALIVE_TIMEOUT = effects.Close(ReasonCode.KEEP_ALIVE_TIMEOUT, "keepalive timeout")
TAKEN_OVER = effects.Close(ReasonCode.SESSION_TAKEN_OVER, "another connection took over the session")
_FOR_SESSION = frozenset((Puback, Pubrec, Pubrel, Pubcomp, Subscribe, Unsubscribe))


class Channel:
    """The protocol state and rules of one client (a base class of Connection;
    on its own it is the core unit tests drive). `session` is only asked
    whether it is there (a CONNECT was accepted)."""

    __slots__ = ("settings", "listener", "hooks", "session", "version", "keepalive_deadline", "expiry",
                 "client_receive_maximum", "max_packet_out", "alias_out", "__dict__")

    # What few clients set is a class default until they do (then it is in their
    # instance dict): a slot costs every connection 8 bytes, set or not.
    problem_info = True     # the client asked for reason strings (5.0)
    alias_in: InboundAliases | None = None      # made at the first alias
    auth_exchange = None    # (connect, assigned, AuthExchange) during enhanced auth

    def __init__(self, settings, listener, hooks) -> None:
        self.settings = settings
        self.listener = listener
        self.hooks = hooks
        self.session = None
        self.version = 4
        self.keepalive_deadline = settings.connect_timeout  # seconds of silence allowed; 0 = none
        self.expiry: int | None = 0         # the session expiry granted; None = never
        self.client_receive_maximum = 65535
        self.max_packet_out = 0             # the client's maximum packet size; 0 = none
        self.alias_out: OutboundAliases | None = None   # when the client allows them

    def handle(self, packet):
        """The effect of one packet from the client (see effects); a broken rule
        raises ProtocolError (its effect: `on_protocol_error`)."""
        kind = type(packet)
        if self.session is not None:
            if kind is Publish:     # the hot path: checked here, no call, no copy
                props = packet.properties
                if props:
                    return self._publish_with_properties(packet, props)
                settings = self.settings
                if packet.qos > settings.max_qos or (packet.retain and not settings.retain_available):
                    self._check_flags(packet)
                return packet
            if kind in _FOR_SESSION:
                return packet
            if kind is Pingreq:
                return effects.PINGRESP
            if kind is Disconnect:
                return self._disconnect(packet)
            if kind is Auth:
                return effects.AskHooks(packet)
        elif kind is Auth and self.auth_exchange is not None:
            return effects.AskHooks(packet)
        elif kind is not Connect:
            raise ProtocolError(ReasonCode.PROTOCOL_ERROR, "first packet must be CONNECT")
        if kind is Connect:
            return self._connect(packet)
        raise ProtocolError(ReasonCode.PROTOCOL_ERROR,
                            f"{kind.__name__.upper()} is sent by servers only")

    def _connect(self, packet: Connect):
        if self.session is not None:
            raise ProtocolError(ReasonCode.PROTOCOL_ERROR, "second CONNECT")
        self.version = packet.protocol_level
        if packet.protocol_level == 5:
            self._take_client_limits(client_limits(packet.properties))
        verdict = check_connect(packet, self.settings, self.listener.allowed_protocol_versions,
                                self.hooks.client_enhanced_auth is not None)
        if verdict.refusal:
            return effects.Refuse(Connack(False, verdict.refusal), packet.client_id)
        return effects.Accept(packet, verdict.assigned)

    def _take_client_limits(self, limits: ClientLimits) -> None:
        self.client_receive_maximum = limits.receive_maximum
        self.max_packet_out = limits.maximum_packet_size
        if not limits.problem_information:
            self.problem_info = False
        if limits.topic_alias_maximum:
            self.alias_out = OutboundAliases(limits.topic_alias_maximum)

    def accept_session(self, packet: Connect, assigned: str | None) -> dict:
        """The session opens: the keepalive and session expiry granted (kept here),
        and the 5.0 CONNACK properties that say so."""
        settings = self.settings
        self.expiry = session_expiry(packet, settings)
        self.keepalive_deadline = keepalive_deadline(negotiated_keepalive(packet.keepalive, settings),
                                                     settings.keepalive_multiplier)
        return connack_properties(packet, assigned, self.expiry, settings)

    def _publish_with_properties(self, packet: Publish, props: dict) -> Publish:
        """The PUBLISH to route, its topic alias resolved [MQTT-3.3.2-*]."""
        if "topic_alias" in props:
            aliases = self.alias_in
            if aliases is None:
                aliases = self.alias_in = InboundAliases(self.settings.topic_alias_maximum)
            packet = Publish(aliases.resolve(packet.topic_name, props["topic_alias"]), packet.payload,
                             packet.qos, packet.retain, packet.dup, packet.packet_id, props)
        self._check_flags(packet)
        if props.get("payload_format_indicator") == 1:
            try:
                packet.payload.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(ReasonCode.PAYLOAD_FORMAT_INVALID, "payload is not UTF-8") from None
        return packet

    def _check_flags(self, packet: Publish) -> None:
        """A QoS or retain flag the server does not support is a protocol error."""
        settings = self.settings
        if packet.qos > settings.max_qos:
            raise ProtocolError(ReasonCode.QOS_NOT_SUPPORTED, f"QoS {packet.qos} not supported")
        if packet.retain and not settings.retain_available:
            raise ProtocolError(ReasonCode.RETAIN_NOT_SUPPORTED, "retain not supported")

    def _disconnect(self, packet: Disconnect) -> Disconnected:
        decision = on_disconnect(packet, self.expiry, self.settings)
        self.expiry = decision.expiry
        return decision

    # -- events --------------------------------------------------------------------------

    def on_keepalive_expired(self) -> effects.Close:
        """Silence past the deadline: without a CONNECT yet, close without a word."""
        return effects.CLOSE_SILENTLY if self.session is None else KEEPALIVE_TIMEOUT

    def on_taken_over(self) -> effects.Close:
        """Another connection took this client id (5.0: reason 0x8E)."""
        return TAKEN_OVER

    def on_protocol_error(self, exc: ProtocolError, decoded_version: int | None):
        """A broken rule: before the session, a refusing CONNACK (3.1.1: only for
        its protocol version; `decoded_version`: the CONNECT's, as far as
        decoded); after, DISCONNECT with its reason code (5.0) and close."""
        if self.session is not None:
            return effects.Close(exc.reason_code, exc.detail)
        if exc.reason_code == ReasonCode.UNSUPPORTED_PROTOCOL_VERSION:
            return effects.V311_UNACCEPTABLE_PROTOCOL
        if decoded_version == 5:
            self.version = 5
            return effects.Refuse(Connack(False, exc.reason_code, reason(exc.detail, self.problem_info)))
        return effects.Close(0, exc.detail)
