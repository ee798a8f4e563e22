"""Worker-side admin commands about clients, sessions and subscriptions:
what `GET /api/v4/clients`, `/subscriptions`, `/routes`, the kick, the HTTP
subscribe/unsubscribe and `actormq session show|disconnect|unsubscribe` read
from each worker.

Each session of the worker (online, or offline and persistent) is one row in
EMQX 4's client fields (`client_row`); `sessions.list` adds VerneMQ's session
columns. Filters run here, so only matching rows cross the channel; the node
concatenates and pages.
"""

from __future__ import annotations

import re
import time

from actormq.mgmt.commands import CommandError, admin_command
from actormq.transport.codec import ReasonCode
from actormq.transport.topics import matches, parse_shared

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _when(seconds: float | None) -> str | None:
    return time.strftime(_TIME_FORMAT, time.localtime(seconds)) if seconds else None


def _peer(conn) -> tuple[str | None, int | None]:
    if conn is None:
        return None, None
    host, _, port = conn.peer.rpartition(":")
    return host.strip("[]") or None, int(port) if port.isdigit() else None


def client_row(broker, session) -> dict:
    """One session in EMQX 4's client fields."""
    conn = session.conn
    connect = conn.connect_packet if conn is not None else None
    host, port = _peer(conn)
    expiry = session.expiry_interval
    settings = broker.settings
    return {
        "clientid": session.client_id,
        "username": connect.username if connect is not None else None,
        "proto_name": connect.protocol_name if connect is not None else "MQTT",
        "proto_ver": session.version,
        "ip_address": host,
        "port": port,
        "connected": session.online,
        "conn_state": "connected" if session.online else "disconnected",
        "clean_start": connect.clean_start if connect is not None else False,
        "keepalive": connect.keepalive if connect is not None else None,
        "expiry_interval": 0xFFFFFFFF if expiry is None else expiry,
        "created_at": _when(conn.connected_at if conn is not None else None),
        "connected_at": _when(conn.connected_at if conn is not None else None),
        "disconnected_at": _when(session.disconnected_at),
        "subscriptions_cnt": len(session.subscriptions),
        "max_subscriptions": 0,
        "inflight": session.inflight_count(),
        "max_inflight": min(settings.max_inflight, session.receive_maximum),
        "mqueue_len": len(session.queue),
        "max_mqueue": settings.max_online_messages if session.online else settings.max_offline_messages,
        "recv_msg": conn.received if conn is not None else 0,
        "zone": "external",
        "is_bridge": False,
    }


def _text_filter(args: dict, name: str) -> str | None:
    value = args.get(name)
    return None if value in (None, "") else str(value)


def _client_filter(args: dict):
    """A predicate over client rows from EMQX 4's query parameters."""
    exact = {name: _text_filter(args, name) for name in ("clientid", "username", "ip_address",
                                                          "conn_state", "proto_name")}
    proto_ver = _text_filter(args, "proto_ver")
    like_clientid = _text_filter(args, "like_clientid")
    like_username = _text_filter(args, "like_username")
    pattern = _text_filter(args, "client_id_regex")
    try:
        regex = re.compile(pattern) if pattern is not None else None
    except re.error as exc:
        raise CommandError(f"bad regular expression {pattern!r}: {exc}") from None

    def keep(row: dict) -> bool:
        for name, wanted in exact.items():
            if wanted is not None and str(row.get(name)) != wanted:
                return False
        if proto_ver is not None and str(row["proto_ver"]) != proto_ver:
            return False
        if like_clientid is not None and like_clientid not in row["clientid"]:
            return False
        if like_username is not None and like_username not in (row["username"] or ""):
            return False
        return regex is None or regex.search(row["clientid"]) is not None

    return keep


def _sessions(broker, args: dict):
    """The worker's sessions that pass the filters of args, with their client row."""
    keep = _client_filter(args)
    wanted = _text_filter(args, "clientid")
    candidates = [broker.sessions.get(wanted)] if wanted is not None else list(broker.sessions.values())
    for session in candidates:
        if session is not None:
            row = client_row(broker, session)
            if keep(row):
                yield session, row


@admin_command("clients.list")
def list_clients(broker, args: dict) -> list[dict]:
    return [row for _session, row in _sessions(broker, args)]


@admin_command("sessions.list")
def list_sessions(broker, args: dict) -> list[dict]:
    """VerneMQ's `session show` columns, with the session's subscriptions."""
    rows = []
    for session, row in _sessions(broker, args):
        rows.append({
            "client_id": row["clientid"], "is_online": row["connected"],
            "mountpoint": session.mountpoint,
            "peer_host": row["ip_address"], "peer_port": row["port"], "user": row["username"],
            "protocol": row["proto_ver"], "queue_size": row["mqueue_len"],
            "offline_messages": 0 if session.online else row["mqueue_len"],
            "online_messages": row["mqueue_len"] if session.online else 0,
            "waiting_acks": row["inflight"], "clean_session": row["clean_start"],
            "session_started_at": row["connected_at"], "statename": row["conn_state"],
            "expiry_interval": row["expiry_interval"],
            "subscriptions": [{"topic": f, "qos": o.qos} for f, o in sorted(session.subscriptions.items())],
        })
    return rows


@admin_command("clients.disconnect")
def disconnect_client(broker, args: dict) -> dict | None:
    """Close the client's connection (5.0: DISCONNECT 0x98 administrative action); with
    cleanup (EMQX's kick, VerneMQ's --cleanup) the session goes too. None: not here."""
    session = broker.sessions.get(str(args.get("clientid", "")))
    if session is None:
        return []
    was_online = session.online
    if session.conn is not None:
        session.conn.disconnect(ReasonCode.ADMINISTRATIVE_ACTION, "disconnected by an operator")
        session.detach(publish_will=True)
    if args.get("cleanup") and broker.sessions.get(session.client_id) is session:
        broker.end_session(session)
    return [{"clientid": session.client_id, "was_online": was_online}]


@admin_command("subscriptions.list")
def list_subscriptions(broker, args: dict) -> list[dict]:
    """EMQX 4 subscription rows: clientid, topic, qos (filters: clientid, topic, qos, share,
    match_topic)."""
    wanted = _text_filter(args, "clientid")
    topic = _text_filter(args, "topic")
    qos = _text_filter(args, "qos")
    share = _text_filter(args, "share")
    match_topic = _text_filter(args, "match_topic")
    sessions = [broker.sessions.get(wanted)] if wanted is not None else list(broker.sessions.values())
    rows = []
    for session in sessions:
        if session is None:
            continue
        for topic_filter, opts in sorted(session.subscriptions.items()):
            group, real = parse_shared(topic_filter)
            if (topic is not None and topic_filter != topic) or (qos is not None and str(opts.qos) != qos) \
                    or (share is not None and group != share) \
                    or (match_topic is not None and not matches(real, match_topic)):
                continue
            rows.append({"clientid": session.client_id, "topic": topic_filter, "qos": opts.qos})
    return rows


@admin_command("routes.list")
def list_routes(broker, args: dict) -> list[dict]:
    """The topic filters this worker has subscribers for (EMQX: topic → node)."""
    topic = _text_filter(args, "topic")
    return [{"topic": route_filter} for route_filter in sorted(broker.router.local_filters())
            if topic is None or route_filter == topic]


def _connected_session(broker, args: dict):
    """The session of a connected client held here (EMQX changes subscriptions of
    connected clients only), or None."""
    session = broker.sessions.get(str(args.get("clientid", "")))
    return session if session is not None and session.conn is not None else None


@admin_command("clients.subscribe")
def subscribe(broker, args: dict) -> list[dict]:
    """Subscribe a connected client held here to topics (EMQX's /mqtt/subscribe)."""
    qos = int(args.get("qos", 0))
    return _for_topics(broker, args, lambda session, topic: {"code": session.add_subscription(topic, qos)})


@admin_command("clients.unsubscribe")
def unsubscribe(broker, args: dict) -> list[dict]:
    return _for_topics(broker, args, lambda session, topic: {"removed": session.remove_subscription(topic)})


def _for_topics(broker, args: dict, change) -> list[dict]:
    """One row per topic of args, from change(session, topic); none when the client is
    not connected here."""
    session = _connected_session(broker, args)
    if session is None:
        return []
    return [{"clientid": session.client_id, "topic": topic} | change(session, topic)
            for topic in args.get("topics", [])]
