"""The management API's plugin actions (EMQX 4 shape): load (enable), unload
(disable) and reload a plugin in every worker of the node.

    PUT /api/v4/plugins/{name}/load|unload|reload
    PUT /api/v4/nodes/{node}/plugins/{name}/load|unload|reload

`GET /api/v4/plugins` (the list) is served with the node routes; both ask
the workers' `plugins.*` admin commands (`actormq.hooks.admin`).
"""

from __future__ import annotations

from aiohttp import web

from actormq.mgmt.app import plane_of
from actormq.mgmt.envelope import not_found, ok
from actormq.mgmt.plane import rpc_error

routes = web.RouteTableDef()

_COMMANDS = {"load": "plugins.enable", "unload": "plugins.disable", "reload": "plugins.reload"}


@routes.put("/api/v4/plugins/{name}/{action}")
@routes.put("/api/v4/nodes/{node}/plugins/{name}/{action}")
async def plugin_action(request: web.Request) -> web.Response:
    plane = plane_of(request)
    node = request.match_info.get("node")
    if node is not None and node != plane.node_name:
        raise not_found(f"no node {node!r}")
    command = _COMMANDS.get(request.match_info["action"])
    if command is None:
        raise not_found(f"no plugin action {request.match_info['action']!r} (load, unload, reload)")
    gathered = await plane.ask_all(command, {"name": request.match_info["name"]})
    if not gathered.answers:
        raise rpc_error(gathered)
    extra = {"failed": gathered.failures()} if gathered.failed else {}
    return ok(**extra)
