"""EMQX 4 routes over clients, subscriptions and routes: list with paging and
filters, one client, kick, ACL cache, subscriptions, routes.

Filters run on the workers (`clients.list`, `subscriptions.list`); rows come
back with node and worker, sorted here by client id so pages are stable.
"""

from __future__ import annotations

from aiohttp import web

from actormq.mgmt.app import plane_of
from actormq.mgmt.envelope import CLIENT_OFFLINE, ApiError, not_found, ok, page

routes = web.RouteTableDef()

CLIENT_FILTERS = ("clientid", "username", "ip_address", "conn_state", "proto_name", "proto_ver",
                  "like_clientid", "like_username")
SUBSCRIPTION_FILTERS = ("clientid", "topic", "qos", "share", "match_topic")


def _filters(request: web.Request, names: tuple[str, ...]) -> dict:
    """Query filters by name; EMQX spells the fuzzy ones `_like_…` and `_match_topic`."""
    found = {}
    for name in names:
        value = request.query.get(name, request.query.get(f"_{name}"))
        if value is not None:
            found[name] = value
    return found


def paged(request: web.Request, rows: list, gathered, filtered: bool = False) -> web.Response:
    """One page of node-wide rows, naming the workers that did not answer."""
    extra = {"failed": gathered.failures()} if gathered.failed else {}
    return page(request, rows, plane_of(request).max_rows, filtered, **extra)


def _check_node(request: web.Request) -> None:
    """The `/api/v4/nodes/{node}/...` variants answer for this node only."""
    node = request.match_info.get("node")
    if node is not None and node != plane_of(request).node_name:
        raise not_found(f"no node {node!r}")


async def client_rows(request: web.Request, args: dict) -> tuple[list, object]:
    _check_node(request)
    rows, gathered = await plane_of(request).ask_rows("clients.list", args)
    rows.sort(key=lambda row: row["clientid"])
    return rows, gathered


@routes.get("/api/v4/clients")
@routes.get("/api/v4/nodes/{node}/clients")
async def list_clients(request: web.Request) -> web.Response:
    args = _filters(request, CLIENT_FILTERS)
    rows, gathered = await client_rows(request, args)
    return paged(request, rows, gathered, bool(args))


@routes.get("/api/v4/clients/username/{username}")
@routes.get("/api/v4/nodes/{node}/clients/username/{username}")
async def clients_by_username(request: web.Request) -> web.Response:
    rows, _gathered = await client_rows(request, {"username": request.match_info["username"]})
    return ok(rows)


@routes.get("/api/v4/clients/{clientid}")
@routes.get("/api/v4/nodes/{node}/clients/{clientid}")
async def get_client(request: web.Request) -> web.Response:
    rows, _gathered = await client_rows(request, {"clientid": request.match_info["clientid"]})
    return ok(rows)


@routes.delete("/api/v4/clients/{clientid}")
@routes.delete("/api/v4/nodes/{node}/clients/{clientid}")
async def kick_client(request: web.Request) -> web.Response:
    """Kick: the connection gets DISCONNECT 0x98 (5.0) and the session ends."""
    _check_node(request)
    client_id = request.match_info["clientid"]
    rows, _gathered = await plane_of(request).ask_rows("clients.disconnect",
                                                       {"clientid": client_id, "cleanup": True})
    if not rows:
        raise ApiError(404, CLIENT_OFFLINE, f"client {client_id!r} not found")
    return ok()


@routes.get("/api/v4/clients/{clientid}/acl_cache")
async def get_acl_cache(request: web.Request) -> web.Response:
    rows, _gathered = await plane_of(request).ask_rows(
        "acl_cache.list", {"clientid": request.match_info["clientid"]}, optional=True)
    return ok([{k: v for k, v in row.items() if k != "worker"} for row in rows])


@routes.delete("/api/v4/clients/{clientid}/acl_cache")
async def clean_acl_cache(request: web.Request) -> web.Response:
    await plane_of(request).ask_rows("acl_cache.clean", {"clientid": request.match_info["clientid"]},
                                     optional=True)
    return ok()


def _subscription_row(row: dict) -> dict:
    return {"node": row["node"], "clientid": row["clientid"], "topic": row["topic"], "qos": row["qos"]}


@routes.get("/api/v4/subscriptions")
@routes.get("/api/v4/nodes/{node}/subscriptions")
async def list_subscriptions(request: web.Request) -> web.Response:
    _check_node(request)
    args = _filters(request, SUBSCRIPTION_FILTERS)
    rows, gathered = await plane_of(request).ask_rows("subscriptions.list", args)
    rows = sorted((_subscription_row(r) for r in rows), key=lambda r: (r["clientid"], r["topic"]))
    return paged(request, rows, gathered, bool(args))


@routes.get("/api/v4/subscriptions/{clientid}")
@routes.get("/api/v4/nodes/{node}/subscriptions/{clientid}")
async def client_subscriptions(request: web.Request) -> web.Response:
    _check_node(request)
    rows, _gathered = await plane_of(request).ask_rows(
        "subscriptions.list", {"clientid": request.match_info["clientid"]})
    return ok(sorted((_subscription_row(r) for r in rows), key=lambda r: r["topic"]))


async def _routes(request: web.Request, topic: str | None) -> tuple[list, object]:
    rows, gathered = await plane_of(request).ask_rows("routes.list", {"topic": topic} if topic else {})
    unique = sorted({(row["topic"], row["node"]) for row in rows})
    return [{"topic": topic_filter, "node": node} for topic_filter, node in unique], gathered


@routes.get("/api/v4/routes")
async def list_routes(request: web.Request) -> web.Response:
    rows, gathered = await _routes(request, None)
    return paged(request, rows, gathered, False)


@routes.get("/api/v4/routes/{topic:.+}")
async def topic_routes(request: web.Request) -> web.Response:
    rows, _gathered = await _routes(request, request.match_info["topic"])
    return ok(rows)
