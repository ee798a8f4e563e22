"""The core's side of the hook chains: what each decide and fold point is asked
with, and what its answer does to the client.

Only reached when a plugin hooks the point (`Hooks` attributes are None
otherwise, and the Connection and Session test that first). Every answer
goes through `Connection.wait_then`: a `Decision` (or folded value) is acted
on at once; a Future (an async provider) holds that client's later packets
in order and pauses its socket reading until it resolves — the waiting
pipeline — while every other client goes on. (The CONNECT's authentication
acts on a Decision given at once itself: a cached answer costs no more.)

CONNECT: ``client.connect`` (notify), then MQTT 5 enhanced authentication
(AUTH exchange) when the CONNECT names a method, else
``client.authenticate``; its modifiers change the client id, mountpoint,
clean start, maximum packet size, superuser flag and the session's limits
(in-flight window, online / offline queue lengths, queue type).
PUBLISH: ``client.authorize_publish`` (decide, with message modifiers), then
``message.publish`` (fold: may change or drop). SUBSCRIBE: per filter
``client.authorize_subscribe`` (grant a lower QoS, rewrite the filter or
refuse with a reason code). UNSUBSCRIBE: per filter ``client.unsubscribe``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from functools import partial
from time import monotonic as _monotonic
from types import MappingProxyType

from actormq.actors.messages import Message
from actormq.actors.queue import QueueLimits
from actormq.hooks import DROP, AuthExchange, ClientInfo, Decision, DropReason
from actormq.hooks.info import connect_client_info
from actormq.transport.codec import Auth, Connack, ReasonCode
from actormq.transport.mountpoint import mount, mount_will
from actormq.transport.topics import validate_topic_name

_NO_MEMO = MappingProxyType({})     # the first provider offers no memo to this client
_NO_CERTIFICATE = (None, None)

log = logging.getLogger("actormq.hooks")

_LIMIT_MODIFIERS = ("max_inflight_messages", "max_online_messages", "max_offline_messages",
                    "queue_type")
_INT_MODIFIERS = frozenset({"max_inflight_messages", "max_online_messages", "max_offline_messages",
                            "max_message_size", "qos"})


class BadModifier(ValueError):
    """A provider's modifier has a value the core cannot use."""


# -- who the client is -----------------------------------------------------------------

def client_info(conn, packet) -> ClientInfo:
    """The ClientInfo of a CONNECT, with the peer (PROXY aware), listener and
    certificate of its connection."""
    address = conn._address()
    host, port = address[:2] if type(address) is tuple else ("local", 0)
    listener = conn.listener
    # only a TLS listener's socket has a peer certificate to read
    cn, dn = conn.certificate_identity() if listener.tls is not None else _NO_CERTIFICATE
    return connect_client_info(conn.client_id, packet.username, packet.password,
                               host, port or 0, packet.protocol_level,
                               packet.clean_start, packet.keepalive,
                               listener.name, conn.mountpoint, cn, dn,
                               packet.properties)


def info_of(conn) -> ClientInfo:
    """The connection's ClientInfo, made from its CONNECT for a client that connected
    before any plugin was loaded."""
    info = conn.client_info
    if info is None:
        info = conn.client_info = client_info(conn, conn.connect_packet)
    return info


# -- CONNECT and enhanced authentication -------------------------------------------------

def connect(conn, packet, assigned: str | None) -> None:
    """A valid CONNECT: ask the authentication chains, then let the connection go on."""
    hooks = conn.hooks
    info = conn.client_info = client_info(conn, packet)
    if hooks.client_connect is not None:
        hooks.client_connect.notify(info)
    method = packet.properties.get("authentication_method") if packet.protocol_level == 5 else None
    if method:
        exchange = AuthExchange(method, packet.properties.get("authentication_data"))
        ask_enhanced(conn, packet, assigned, exchange)
        return
    chain = hooks.client_authenticate
    if chain is None:
        conn.connect_allowed(packet, assigned)
        return
    decision = chain.decide(info)
    if type(decision) is Decision:
        # answered at once (a cache, a sync provider): no waiting, and a plain yes goes on
        if decision.allowed and not decision.modifiers:
            conn.connect_allowed(packet, assigned)
        else:
            _connect_decided(conn, packet, assigned, decision)
        return
    conn.wait_then(decision, partial(_connect_decided, conn, packet, assigned))


def ask_enhanced(conn, packet, assigned, exchange: AuthExchange) -> None:
    chain = conn.hooks.client_enhanced_auth
    conn.wait_then(chain.decide(conn.client_info, exchange),
                   partial(_enhanced_answered, conn, packet, assigned, exchange))


def _enhanced_answered(conn, packet, assigned, exchange: AuthExchange, decision: Decision) -> None:
    if decision.more:
        conn.auth_exchange = (packet, assigned, replace(exchange, state=decision.state))
        conn.send_packet(Auth(ReasonCode.CONTINUE_AUTHENTICATION, _auth_props(exchange.method,
                                                                              decision.auth_data)))
        return
    conn.auth_exchange = None
    if decision.allowed:
        modifiers = dict(decision.modifiers)
        conn.auth_props = _auth_props(exchange.method, modifiers.pop("auth_data", None))
        decision = replace(decision, modifiers=modifiers)
    _connect_decided(conn, packet, assigned, decision)


def auth_packet(conn, packet) -> bool:
    """An AUTH from the client: the next step of a CONNECT's exchange, or a
    re-authentication; False when there is no exchange it belongs to."""
    props = packet.properties
    chain = conn.hooks.client_enhanced_auth
    if conn.session is None:
        pending = conn.auth_exchange
        if pending is None or packet.reason_code != ReasonCode.CONTINUE_AUTHENTICATION:
            return False
        connect_packet, assigned, previous = pending
        _check_method(props, previous.method)
        ask_enhanced(conn, connect_packet, assigned, AuthExchange(
            previous.method, props.get("authentication_data"), previous.step + 1, False,
            previous.state))
        return True
    method = (conn.auth_props or {}).get("authentication_method")
    if chain is None or method is None:
        return False
    _check_method(props, method)
    previous = conn.auth_exchange[2] if conn.auth_exchange else None
    if packet.reason_code == ReasonCode.RE_AUTHENTICATE or previous is None:
        exchange = AuthExchange(method, props.get("authentication_data"), 1, True)
    else:
        exchange = AuthExchange(method, props.get("authentication_data"), previous.step + 1, True,
                                previous.state)
    conn.wait_then(chain.decide(info_of(conn), exchange),
                   partial(_reauth_answered, conn, exchange))
    return True


def _reauth_answered(conn, exchange: AuthExchange, decision: Decision) -> None:
    if decision.more:
        conn.auth_exchange = (None, None, replace(exchange, state=decision.state))
        conn.send_packet(Auth(ReasonCode.CONTINUE_AUTHENTICATION,
                              _auth_props(exchange.method, decision.auth_data)))
        return
    conn.auth_exchange = None
    if not decision.allowed:
        log.info("client %s (%s): re-authentication refused by %s: 0x%02X", conn.client_id,
                 conn.peer, decision.decided_by, decision.reason_code)
        conn.disconnect(decision.reason_code, decision.reason or "re-authentication failed")
        return
    conn.send_packet(Auth(ReasonCode.SUCCESS, _auth_props(exchange.method,
                                                          decision.modifiers.get("auth_data"))))


def _check_method(props: dict, method: str) -> None:
    from actormq.errors import ProtocolError
    if props.get("authentication_method") != method:
        raise ProtocolError(ReasonCode.PROTOCOL_ERROR, "AUTH with another authentication method")


def _auth_props(method: str, data: bytes | None) -> dict:
    props = {"authentication_method": method}
    if data:
        props["authentication_data"] = data
    return props


def _connect_decided(conn, packet, assigned, decision: Decision) -> None:
    if decision.allowed:
        try:
            packet = apply_connect_modifiers(conn, packet, decision.modifiers)
        except BadModifier as exc:
            log.error("plugin %s: bad modifier on CONNECT of %s: %s", decision.decided_by,
                      conn.client_id, exc)
            decision = Decision(False, ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR, "bad modifier")
        else:
            conn.connect_allowed(packet, assigned)
            return
    log.info("client %s (%s) refused by %s: 0x%02X %s", conn.client_id, conn.peer,
             decision.decided_by or "plugin", decision.reason_code, decision.reason)
    reason = {"reason_string": decision.reason} if decision.reason and conn.problem_info else {}
    conn.send_packet(Connack(False, decision.reason_code, reason if conn.version == 5 else {}))
    connack(conn, decision.reason_code)
    conn.close(linger=True)


def connack(conn, reason_code: int) -> None:
    chain = conn.hooks.client_connack
    if chain is not None and conn.client_info is not None:
        chain.notify(conn.client_info, reason_code)


def session_opened(conn, session, present: bool, connack_props: dict) -> None:
    """The session of an accepted CONNECT is open (CONNACK not sent yet)."""
    if conn.limits:
        queue_limits, max_inflight = session_limits(conn.limits, session.queue.limits,
                                                    session.max_inflight)
        session.use_limits(queue_limits, max_inflight)
    if conn.auth_props and conn.version == 5:
        connack_props.update(conn.auth_props)
    hooks = conn.hooks
    chain = hooks.session_resumed if present else hooks.session_created
    if chain is not None:
        chain.notify(conn.client_info)
    connack(conn, 0)


def connected(conn) -> None:
    hooks = conn.hooks
    for chain in (hooks.client_connected, hooks.client_wakeup):
        if chain is not None:
            chain.notify(conn.client_info)


def client_closed(conn, session, exc) -> None:
    """The client's socket closed: ``client.disconnected``, then ``client.offline`` when its
    session stays, ``client.gone`` when it ends with the connection."""
    hooks = conn.hooks
    info = info_of(conn)
    if hooks.client_disconnected is not None:
        reason = ("normal" if conn.clean_disconnect else
                  "taken_over" if conn.was_taken_over else f"closed: {exc}" if exc else "closed")
        hooks.client_disconnected.notify(info, reason)
    chain = hooks.client_offline if session.persistent else hooks.client_gone
    if chain is not None:
        chain.notify(info)


def apply_connect_modifiers(conn, packet, modifiers) -> object:
    """Carry out an authentication's modifiers; returns the CONNECT to go on with."""
    if not modifiers:
        return packet
    for name, value in modifiers.items():
        _check_modifier(name, value)
    info_changes = {}
    if "client_id" in modifiers:
        conn.client_id = info_changes["client_id"] = modifiers["client_id"]
    for name in ("clean_session", "clean_start"):
        if name in modifiers:
            packet = replace(packet, clean_start=bool(modifiers[name]))
    if "mountpoint" in modifiers:
        conn.mountpoint = info_changes["mountpoint"] = modifiers["mountpoint"]
        if packet.will is not None:
            packet = mount_will(packet, conn.mountpoint)
    if modifiers.get("superuser"):
        info_changes["superuser"] = True
    if "max_message_size" in modifiers:
        conn.decoder.max_packet_size = modifiers["max_message_size"]
    limits = {name: modifiers[name] for name in _LIMIT_MODIFIERS if name in modifiers}
    if limits:
        conn.limits = limits
    if info_changes:
        conn.client_info = conn.client_info.evolve(**info_changes)
    return packet


def _check_modifier(name: str, value) -> None:
    if name in _INT_MODIFIERS:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BadModifier(f"{name} must be a non-negative integer, got {value!r}")
        if name == "qos" and value > 2:
            raise BadModifier(f"qos must be 0, 1 or 2, got {value!r}")
    elif name in ("client_id", "mountpoint", "topic_name", "topic_filter"):
        if not isinstance(value, str) or (name != "mountpoint" and not value):
            raise BadModifier(f"{name} must be a non-empty string, got {value!r}")
    elif name == "queue_type" and value not in ("fifo", "lifo"):
        raise BadModifier(f"queue_type must be fifo or lifo, got {value!r}")
    elif name == "payload" and not isinstance(value, (bytes, bytearray)):
        raise BadModifier(f"payload must be bytes, got {type(value).__name__}")
    elif name == "properties" and not isinstance(value, dict):
        raise BadModifier(f"properties must be a dict, got {type(value).__name__}")


def session_limits(limits: dict, defaults: QueueLimits, max_inflight: int) -> tuple[QueueLimits, int]:
    """The queue limits and in-flight window of a session whose CONNECT was modified."""
    queue_limits = replace(defaults,
                           max_online=limits.get("max_online_messages", defaults.max_online),
                           max_offline=limits.get("max_offline_messages", defaults.max_offline),
                           lifo=limits.get("queue_type", "lifo" if defaults.lifo else "fifo") == "lifo")
    return queue_limits, limits.get("max_inflight_messages", max_inflight) or max_inflight


# -- PUBLISH ------------------------------------------------------------------------------

def publish(conn, packet, message: Message, authorized: bool = False) -> None:
    """A client's PUBLISH (and the Message made of it, not shared yet) when a plugin hooks
    its authorization or ``message.publish``, or the client has a mountpoint: authorized
    (unless `authorized` already, see `_authorize`), then folded and routed. Synchronous
    answers are acted on inline (no callback, no call more than needed). The commonest
    shape — ``message.publish`` alone, QoS 0 or 1, no mountpoint, nothing waiting — the
    Connection runs itself (`Connection._route`) and comes here only with a changed
    message (`publish_folded`)."""
    hooks = conn.hooks
    if not authorized and (hooks.client_authorize_publish is not None or conn.mountpoint
                           or packet.qos == 2):
        message = _authorize(conn, packet, message)
        if message is None:
            return
    chain = hooks.message_publish
    if chain is None:
        if conn.pipeline is None:
            conn.route_publish(packet, message)
        else:
            conn.in_order(message, partial(conn.route_publish, packet))
        return
    publish_folded(conn, packet, message, chain.fold(conn.client_info or info_of(conn), message))


def publish_folded(conn, packet, message: Message, folded) -> None:
    """Go on with what ``message.publish`` made of a client's message."""
    if type(folded) is Message and conn.pipeline is None:
        conn.route_publish(packet, folded)
    else:
        # a fold that waits does not stop the client's next PUBLISHes: the outcomes are
        # applied in order (`actors.pipeline`)
        conn.in_order(folded, partial(_publish_folded, conn, packet, message))


def _authorize(conn, packet, message: Message) -> Message | None:
    """The message to go on with, mounted and authorized, or None when it has been dealt
    with here: a QoS 2 PUBLISH whose packet id awaits its PUBREL is a duplicate, not a new
    message (the session answers it again without asking the chains); a refusal; a
    decision still due.

    The memo: when the first provider of ``client.authorize_publish`` offers one
    (`Plugin.allowed_publish`, the ACL's cache), the connection keeps it with the chain it
    belongs to, and a topic in it whose time has not run out is allowed without running
    the chain (the first provider would have said a plain OK, which ends the chain).
    A changed chain, a sampled or failing run (`Chain.left` is 0) or a topic not in it
    runs the chain, and an allowed answer fetches the memo again."""
    if packet.qos == 2 and packet.packet_id in conn.session.qos2_in:
        conn.in_order(message, partial(conn.route_publish, packet))
        return None
    if conn.mountpoint:
        message.topic_name = mount(conn.mountpoint, message.topic_name)   # our own Message
    chain = conn.hooks.client_authorize_publish
    if chain is None:
        return message
    memo = conn.publish_memo
    if memo is not None and memo[0] is chain and chain.left and \
            memo[1].get(message.topic_name, 0.0) > _monotonic():
        return message
    info = conn.client_info or info_of(conn)
    decision = chain.decide(info, message)
    if type(decision) is not Decision:
        conn.wait_then(decision, partial(_publish_decided, conn, packet, message))
        return None
    if decision.allowed:
        if conn.hooks.allowed_publish is not None:
            _remember_allowed(conn, chain, memo, info)
        if not decision.modifiers:
            return message
    return _authorized(conn, packet, message, decision)


def _remember_allowed(conn, chain, memo, info: ClientInfo) -> None:
    """Fetch the memo of the chain's first provider again (it may be a new one, or a new
    mapping), unless it has none for this client."""
    allowed_publish = conn.hooks.allowed_publish
    if allowed_publish is not None and (memo is None or memo[0] is not chain
                                        or memo[1] is not _NO_MEMO):
        conn.publish_memo = (chain, allowed_publish(info) or _NO_MEMO)


def _publish_decided(conn, packet, message: Message, decision: Decision) -> None:
    """An asynchronous authorization answered: go on as `publish` does with it."""
    if decision.allowed:
        _remember_allowed(conn, conn.hooks.client_authorize_publish, conn.publish_memo,
                          conn.client_info or info_of(conn))
    message = _authorized(conn, packet, message, decision)
    if message is not None:
        publish(conn, packet, message, authorized=True)


def _authorized(conn, packet, message: Message, decision: Decision) -> Message | None:
    """The message to go on with after an authorization (its modifiers applied), or None
    when it was refused (the client has been answered)."""
    if decision.allowed and decision.modifiers:
        try:
            message = modify_message(message, decision.modifiers)
        except BadModifier as exc:
            log.error("plugin %s: bad modifier on a PUBLISH of %s: %s", decision.decided_by,
                      conn.client_id, exc)
            decision = Decision(False, ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR, "bad modifier")
    if decision.allowed:
        return message
    log.debug("client %s: PUBLISH to %s refused by %s: 0x%02X", conn.client_id,
              message.topic_name, decision.decided_by, decision.reason_code)
    dropped(conn.hooks, conn.client_id, message, DropReason.NOT_AUTHORIZED)
    conn.in_order(decision, partial(_refused, conn, packet))
    return None


def _refused(conn, packet, decision: Decision) -> None:
    if decision.disconnect:
        conn.disconnect(decision.reason_code, decision.reason or "publish not authorized")
    else:
        conn.refuse_publish(packet, decision.reason_code)


def _publish_folded(conn, packet, original: Message, folded) -> None:
    if folded is DROP:
        dropped(conn.hooks, conn.client_id, original, DropReason.BY_PLUGIN)
        conn.session.accept_unrouted(packet)
    else:
        conn.route_publish(packet, folded)


def modify_message(message: Message, modifiers) -> Message:
    """A copy of a message with an authorization's modifiers applied."""
    changes = {}
    for name, value in modifiers.items():
        _check_modifier(name, value)
        changes[name] = bytes(value) if name == "payload" else value
    if "topic_name" in changes:
        try:
            validate_topic_name(changes["topic_name"])
        except Exception as exc:
            raise BadModifier(f"topic_name {changes['topic_name']!r}: {exc}") from None
    if "retain" in changes:
        changes["retain"] = bool(changes["retain"])
    return replace(message, **changes)


def dropped(hooks, client_id: str, message, reason: DropReason) -> None:
    chain = hooks.message_dropped
    if chain is not None:
        chain.notify(client_id, message, reason)


# -- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------------

def subscribe(session, packet, valid: list[bool]) -> None:
    """Ask ``client.authorize_subscribe`` for every valid filter, then let the session go on."""
    conn = session.conn
    chain = conn.hooks.client_authorize_subscribe
    answers = [chain.decide(info_of(conn), sub.topic_filter, sub) if ok else None
               for sub, ok in zip(packet.subscriptions, valid)]
    conn.wait_then(_all(answers), partial(session.subscribe_decided, packet))


def unsubscribe(session, packet) -> None:
    conn = session.conn
    chain = conn.hooks.client_unsubscribe
    answers = [chain.decide(info_of(conn), topic_filter) for topic_filter in packet.topic_filters]
    conn.wait_then(_all(answers), partial(session.unsubscribe_decided, packet))


def _all(answers: list):
    """The answers themselves when all are decided, else one Future of them all."""
    if not any(isinstance(answer, asyncio.Future) for answer in answers):
        return answers

    async def gather() -> list:
        return [await answer if isinstance(answer, asyncio.Future) else answer
                for answer in answers]
    return asyncio.ensure_future(gather())


def granted(decision: Decision | None, requested_qos: int, topic_filter: str) -> tuple[int, str]:
    """The QoS and filter a subscription gets after an allowing decision."""
    if decision is None or not decision.modifiers:
        return requested_qos, topic_filter
    modifiers = decision.modifiers
    for name, value in modifiers.items():
        _check_modifier(name, value)
    return min(requested_qos, modifiers.get("qos", requested_qos)), \
        modifiers.get("topic_filter", topic_filter)
