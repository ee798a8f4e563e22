"""Routes about the node itself and the generic admin command route.

- `GET /api/v4`: the routes this API serves (EMQX lists its APIs there).
- `POST /api/v4/admin/{command}`: run any registered worker-side admin command
  on every worker (JSON body = its args); the answer is the rows of every
  worker (node and worker in each) and `failed` naming the workers that did
  not answer. The CLI of every area can use it without a route of its own.
"""

from __future__ import annotations

from aiohttp import web

from actormq.mgmt.app import plane_of
from actormq.mgmt.envelope import json_body, ok
from actormq.mgmt.plane import rpc_error

routes = web.RouteTableDef()


@routes.get("/api/v4")
async def list_apis(request: web.Request) -> web.Response:
    apis = sorted({(resource.canonical, route.method) for resource in request.app.router.resources()
                   for route in resource if route.method != "HEAD"})
    return ok([{"path": path, "method": method} for path, method in apis])


@routes.post("/api/v4/admin/{command}")
async def run_admin_command(request: web.Request) -> web.Response:
    plane = plane_of(request)
    args = await json_body(request) if request.can_read_body else {}
    gathered = await plane.ask_all(request.match_info["command"], args if isinstance(args, dict) else {})
    if not gathered.answers:
        raise rpc_error(gathered)
    extra = {"failed": gathered.failures()} if gathered.failed else {}
    return ok(gathered.rows(), **extra)
