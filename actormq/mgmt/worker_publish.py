"""Worker-side admin command that publishes a message on an operator's behalf
(EMQX's `POST /api/v4/mqtt/publish`): routed like a client's PUBLISH, to the
subscribers on every worker, retained when asked."""

from __future__ import annotations

import base64
import binascii
import time

from actormq.actors.messages import Message
from actormq.mgmt.commands import CommandError, admin_command


@admin_command("mqtt.publish")
def publish(broker, args: dict) -> list[dict]:
    """args: topics (list), payload_b64, qos, retain, clientid, properties (5.0 ones
    forwarded to subscribers). Answers one row per topic with its local deliveries."""
    try:
        payload = base64.b64decode(args.get("payload_b64", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CommandError(f"payload is not valid base64: {exc}") from None
    qos = int(args.get("qos", 0))
    retain = bool(args.get("retain", False))
    origin = str(args.get("clientid") or "")
    rows = []
    now = time.time()
    for topic in args.get("topics", []):
        message = Message(topic, payload, qos, retain, {}, None, now, origin)
        rows.append({"topic": topic, "deliveries": broker.publish(message).delivered})
    return rows
