"""EMQX 4 routes that act as a client would: publish (one, a batch), subscribe
and unsubscribe a connected client (one, a batch).

A publish goes to one worker, which routes it to the subscribers of every
worker like a client's PUBLISH; a subscription change goes to the worker that
holds the client's session.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from actormq.errors import ProtocolError
from actormq.mgmt.app import plane_of
from actormq.mgmt.envelope import (BAD_TOPIC, CLIENT_OFFLINE, ApiError, bad_parameter, json_body,
                                   missing_parameter, ok)
from actormq.transport.topics import validate_topic_filter, validate_topic_name

routes = web.RouteTableDef()


def _topics(item: dict, required: bool = True) -> list[str]:
    """`topic` and/or `topics` ("a,b,c") of a request item."""
    topics = []
    if isinstance(item.get("topics"), str):
        topics += [t.strip() for t in item["topics"].split(",") if t.strip()]
    if isinstance(item.get("topic"), str) and item["topic"]:
        topics.append(item["topic"])
    if required and not topics:
        raise missing_parameter("topic")
    return topics


def _qos(item: dict) -> int:
    qos = item.get("qos", 0)
    if isinstance(qos, bool) or qos not in (0, 1, 2):
        raise bad_parameter(f"qos must be 0, 1 or 2, got {qos!r}")
    return qos


def _payload(item: dict) -> bytes:
    payload = item.get("payload", "")
    if not isinstance(payload, str):
        raise bad_parameter("payload must be a string")
    encoding = item.get("encoding", "plain")
    if encoding == "plain":
        return payload.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise bad_parameter("payload is not valid base64") from None
    raise bad_parameter(f"encoding must be plain or base64, got {encoding!r}")


def _check(topics: list[str], validate) -> None:
    for topic in topics:
        try:
            validate(topic)
        except ProtocolError as exc:
            raise ApiError(400, BAD_TOPIC, f"invalid topic {topic!r}: {exc.detail}") from None


def _publish_args(item) -> dict:
    if not isinstance(item, dict):
        raise bad_parameter("each message must be a JSON object")
    topics = _topics(item)
    _check(topics, validate_topic_name)
    retain = item.get("retain", False)
    if not isinstance(retain, bool):
        raise bad_parameter("retain must be true or false")
    return {"topics": topics, "payload_b64": base64.b64encode(_payload(item)).decode(),
            "qos": _qos(item), "retain": retain, "clientid": str(item.get("clientid") or "")}


@routes.post("/api/v4/mqtt/publish")
async def publish(request: web.Request) -> web.Response:
    args = _publish_args(await json_body(request))
    await plane_of(request).ask_any("mqtt.publish", args)
    return ok()


@routes.post("/api/v4/mqtt/publish_batch")
async def publish_batch(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, list):
        raise bad_parameter("the body must be a JSON array of messages")
    batch = [_publish_args(item) for item in body]
    results = []
    for args in batch:
        await plane_of(request).ask_any("mqtt.publish", args)
        results += [{"topic": topic, "code": 0} for topic in args["topics"]]
    return ok(results)


async def _change(request: web.Request, item, command: str) -> list[dict]:
    if not isinstance(item, dict):
        raise bad_parameter("each item must be a JSON object")
    client_id = item.get("clientid")
    if not isinstance(client_id, str) or not client_id:
        raise missing_parameter("clientid")
    topics = _topics(item)
    _check(topics, validate_topic_filter)
    args = {"clientid": client_id, "topics": topics, "qos": _qos(item)}
    rows, _gathered = await plane_of(request).ask_rows(command, args)
    if not rows:
        raise ApiError(404, CLIENT_OFFLINE, f"client {client_id!r} not found")
    return rows


async def _changes(request: web.Request, command: str, batch: bool) -> web.Response:
    body = await json_body(request)
    if batch and not isinstance(body, list):
        raise bad_parameter("the body must be a JSON array")
    for item in body if batch else [body]:
        await _change(request, item, command)
    return ok()


def _change_route(command: str, batch: bool):
    async def handler(request: web.Request) -> web.Response:
        return await _changes(request, command, batch)
    return handler


for _path, _command, _batch in (("subscribe", "clients.subscribe", False),
                                ("subscribe_batch", "clients.subscribe", True),
                                ("unsubscribe", "clients.unsubscribe", False),
                                ("unsubscribe_batch", "clients.unsubscribe", True)):
    routes.post(f"/api/v4/mqtt/{_path}")(_change_route(_command, _batch))
