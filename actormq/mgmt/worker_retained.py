"""Worker-side admin commands over the retained store: list (one worker
answers: every worker serves the same retained set), delete one topic and
delete the expired ones (every worker, each updates its own index; the row in
LMDB is shared and deleting it twice is harmless)."""

from __future__ import annotations

import base64

from actormq.mgmt.commands import admin_command
from actormq.transport.topics import matches


def retained_row(message, with_payload: bool) -> dict:
    row = {"topic": message.topic_name, "qos": message.qos, "size": len(message.payload),
           "timestamp": message.timestamp, "expires_at": message.expires_at,
           "from_clientid": message.origin or None}
    if with_payload:
        try:
            row["payload"] = message.payload.decode("utf-8")
            row["encoding"] = "plain"
        except UnicodeDecodeError:
            row["payload"] = base64.b64encode(message.payload).decode()
            row["encoding"] = "base64"
    return row


@admin_command("retained.list")
def list_retained(broker, args: dict) -> list[dict]:
    """The retained messages (filter: `topic`, a topic filter; `payload`: include it)."""
    topic_filter = args.get("topic") or "#"
    with_payload = bool(args.get("payload", True))
    return [retained_row(m, with_payload) for m in broker.retained.messages()
            if matches(topic_filter, m.topic_name)]


@admin_command("retained.delete")
def delete_retained(broker, args: dict) -> list[dict]:
    topic = str(args.get("topic", ""))
    return [{"topic": topic}] if broker.retained.delete(topic) else []


@admin_command("retained.delete_expired")
def delete_expired(broker, args: dict) -> int:
    return broker.retained.delete_expired()
