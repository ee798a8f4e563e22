"""Retained messages: `GET /api/v4/retained` (paged; `topic` filter,
`payload=false` to leave payloads out), `GET|DELETE /api/v4/retained/{topic}`,
`DELETE /api/v4/retained?expired=true` (forget the expired ones)."""

from __future__ import annotations

from aiohttp import web

from actormq.mgmt.app import plane_of
from actormq.mgmt.envelope import bad_parameter, not_found, ok, page

routes = web.RouteTableDef()


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1", "on", "yes"):
        return True
    if value.lower() in ("false", "0", "off", "no"):
        return False
    raise bad_parameter(f"{name} must be true or false, got {value!r}")


@routes.get("/api/v4/retained")
async def list_retained(request: web.Request) -> web.Response:
    plane = plane_of(request)
    args = {"topic": request.query.get("topic") or "#", "payload": _flag(request, "payload", True)}
    rows = await plane.ask_any("retained.list", args)
    return page(request, [{"node": plane.node_name} | row for row in rows], plane.max_rows,
                filtered="topic" in request.query)


@routes.get("/api/v4/retained/{topic:.+}")
async def get_retained(request: web.Request) -> web.Response:
    plane = plane_of(request)
    topic = request.match_info["topic"]
    rows = [row for row in await plane.ask_any("retained.list", {"topic": topic})
            if row["topic"] == topic]
    if not rows:
        raise not_found(f"no retained message on {topic!r}")
    return ok([{"node": plane.node_name} | row for row in rows])


@routes.delete("/api/v4/retained/{topic:.+}")
async def delete_retained(request: web.Request) -> web.Response:
    rows, _gathered = await plane_of(request).ask_rows("retained.delete",
                                                       {"topic": request.match_info["topic"]})
    if not rows:
        raise not_found(f"no retained message on {request.match_info['topic']!r}")
    return ok()


@routes.delete("/api/v4/retained")
async def delete_expired(request: web.Request) -> web.Response:
    if not _flag(request, "expired", False):
        raise bad_parameter("DELETE /api/v4/retained takes expired=true (or delete one topic)")
    rows, _gathered = await plane_of(request).ask_rows("retained.delete_expired")
    return ok({"deleted": max((row["result"] for row in rows), default=0)})
