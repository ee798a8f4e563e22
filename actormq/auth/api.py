"""Management API routes of the auth area (EMQX 4 shape):

- `GET /api/v4/clients/{clientid}/acl_cache`: the client's cached ACL
  results, `{"code": 0, "data": [{"access", "topic", "result",
  "updated_time"}]}`;
- `DELETE /api/v4/clients/{clientid}/acl_cache`: empty it, `{"code": 0}`.

A client connected to no worker answers 404 (code 404, "Client not found").
"""

from __future__ import annotations

from aiohttp import web

from actormq.mgmt.app import plane_of
from actormq.mgmt.envelope import not_found, ok
from actormq.mgmt.plane import rpc_error

routes = web.RouteTableDef()


async def _ask(request: web.Request, command: str) -> list:
    client_id = request.match_info["clientid"]
    gathered = await plane_of(request).ask_all(command, {"clientid": client_id})
    if not gathered.answers:
        raise rpc_error(gathered)
    holding = [answer for answer in gathered.answers.values() if answer.get("connected")]
    if not holding:
        raise not_found("Client not found")
    return holding


@routes.get("/api/v4/clients/{clientid}/acl_cache")
async def list_acl_cache(request: web.Request) -> web.Response:
    holding = await _ask(request, "acl_cache.list")
    return ok([entry for answer in holding for entry in answer["entries"]])


@routes.delete("/api/v4/clients/{clientid}/acl_cache")
async def clear_acl_cache(request: web.Request) -> web.Response:
    await _ask(request, "acl_cache.clear")
    return ok()
