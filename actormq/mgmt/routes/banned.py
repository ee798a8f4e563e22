"""EMQX 4's banned routes: list (paged), add, delete by `as` and `who`. The
table lives in the node (`actormq.mgmt.banned.BanTable`); every change is
pushed to every worker, which refuses a banned CONNECT."""

from __future__ import annotations

from aiohttp import web

from actormq.mgmt.app import plane_of
from actormq.mgmt.banned import KINDS, Ban
from actormq.mgmt.envelope import bad_parameter, json_body, not_found, ok, page

routes = web.RouteTableDef()


@routes.get("/api/v4/banned")
async def list_banned(request: web.Request) -> web.Response:
    plane = plane_of(request)
    return page(request, [ban.as_api() for ban in plane.banned.live()], plane.max_rows)


@routes.post("/api/v4/banned")
async def add_banned(request: web.Request) -> web.Response:
    plane = plane_of(request)
    try:
        ban = Ban.from_api(await json_body(request))
    except ValueError as exc:
        raise bad_parameter(str(exc)) from None
    plane.banned.add(ban)
    await plane.push_banned()
    return ok(ban.as_api())


@routes.delete("/api/v4/banned/{kind}/{who}")
async def delete_banned(request: web.Request) -> web.Response:
    plane = plane_of(request)
    kind, who = request.match_info["kind"], request.match_info["who"]
    if kind not in KINDS:
        raise bad_parameter(f"as must be one of {', '.join(KINDS)}, got {kind!r}")
    if not plane.banned.remove(kind, who):
        raise not_found(f"{kind} {who!r} is not banned")
    await plane.push_banned()
    return ok()
