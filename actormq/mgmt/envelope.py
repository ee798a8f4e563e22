"""The EMQX 4 `/api/v4` response envelope and the request parameter helpers
every route uses (its error codes and `ApiError` are in `api_errors`).

Success: `{"code": 0, "data": ...}`, list routes add
`"meta": {"page", "limit", "count", "hasnext"}`. Failure: an HTTP status and
`{"code": <EMQX return code>, "message": "..."}`; handlers raise `ApiError`
and the app's middleware renders it.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from actormq.mgmt.api_errors import (BAD_JSON, BAD_PARAMETER, BAD_TOPIC, CLIENT_OFFLINE,  # noqa: F401
                                     EMPTY_CREDENTIALS, MISSING_PARAMETER, NOT_FOUND, OK,
                                     PLUGIN_LOADED, PLUGIN_NOT_LOADED, RPC_ERROR, UNKNOWN_ERROR,
                                     WRONG_CREDENTIALS, ApiError, bad_parameter, missing_parameter,
                                     not_found)


def json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def ok(data: Any = None, meta: dict | None = None, **extra: Any) -> web.Response:
    body = {"code": OK}
    if data is not None:
        body["data"] = data
    if meta is not None:
        body["meta"] = meta
    body.update(extra)
    return web.json_response(body, dumps=json_dumps)


def error_response(error: ApiError) -> web.Response:
    return web.json_response({"code": error.code, "message": error.message}, status=error.status,
                             dumps=json_dumps)


def query_int(request: web.Request, name: str, default: int, minimum: int = 0) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_parameter(f"{name} must be an integer, got {text!r}") from None
    if value < minimum:
        raise bad_parameter(f"{name} must be at least {minimum}, got {value}")
    return value


def page(request: web.Request, rows: list, max_rows: int, filtered: bool = False,
         **extra: Any) -> web.Response:
    """One page of rows (`_page` from 1, `_limit` rows, default `max_rows`) with EMQX's meta
    (EMQX 4.1+ reports count -1 for a filtered query)."""
    number = query_int(request, "_page", 1, minimum=1)
    limit = min(query_int(request, "_limit", max_rows, minimum=1), max_rows)
    chosen, meta = page_of(rows, number, limit, filtered)
    return ok(chosen, meta, **extra)


def page_of(rows: list, number: int, limit: int, filtered: bool = False) -> tuple[list, dict]:
    """Page `number` (from 1) of `limit` rows, and EMQX's meta for it."""
    start = (number - 1) * limit
    meta = {"page": number, "limit": limit, "count": -1 if filtered else len(rows),
            "hasnext": start + limit < len(rows)}
    return rows[start:start + limit], meta


async def json_body(request: web.Request) -> Any:
    """The request body as JSON, or a 400 with EMQX's code 109."""
    try:
        return await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, BAD_JSON, f"the request body is not valid JSON: {exc}") from None


def require(body: Any, name: str, kind: type | tuple = str) -> Any:
    if not isinstance(body, dict) or body.get(name) is None:
        raise missing_parameter(name)
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad_parameter(f"{name} has the wrong type: {value!r}")
    return value
