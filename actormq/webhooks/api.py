"""Management API routes of the webhooks (served by the node's control plane).

- ``GET /api/v4/webhooks``: every registration (config and runtime).
- ``POST /api/v4/webhooks`` ``{"hook", "endpoint", "base64payload",
  "no_payload", "response_timeout"}``: register at runtime; stored in the
  data dir (it survives restarts), then every worker reloads.
- ``DELETE /api/v4/webhooks?hook=…&endpoint=…``: deregister a runtime one.
- ``GET /api/v4/webhooks/cache``: auth cache hits / misses / entries per
  endpoint and hook, summed over the workers; ``DELETE`` empties it.
"""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from actormq.mgmt.app import plane_of
from actormq.mgmt.envelope import bad_parameter, json_body, missing_parameter, ok
from actormq.webhooks.specs import RegistrationStore, Webhook, check_endpoint, check_hook, from_config

routes = web.RouteTableDef()


def _store(request: web.Request) -> RegistrationStore:
    return RegistrationStore(plane_of(request).data_dir)


async def _reload(request: web.Request) -> list[dict]:
    gathered = await plane_of(request).ask_all("webhooks.reload", {})
    return gathered.failures()


@routes.get("/api/v4/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    plane = plane_of(request)
    webhooks = from_config(plane.config) + _store(request).load()
    return ok([webhook.row() for webhook in webhooks])


def _flag(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise bad_parameter(f"{name} must be true or false, got {value!r}")
    return value


def _webhook_of(body: dict) -> Webhook:
    for name in ("hook", "endpoint"):
        if not body.get(name):
            raise missing_parameter(name)
    try:
        hook, endpoint = check_hook(body["hook"]), check_endpoint(body["endpoint"])
        timeout = int(body.get("response_timeout", 5000))
    except (ValueError, TypeError) as err:
        raise bad_parameter(str(err)) from None
    if timeout <= 0:
        raise bad_parameter("response_timeout must be a positive number of milliseconds")
    return Webhook(hook, endpoint, _flag(body, "base64payload", True), _flag(body, "no_payload", False),
                   timeout)


@routes.post("/api/v4/webhooks")
async def register(request: web.Request) -> web.Response:
    body = await json_body(request)
    webhook = _webhook_of(body if isinstance(body, dict) else {})
    try:
        _store(request).register(webhook)
    except ValueError as err:
        raise bad_parameter(str(err)) from None
    return ok(webhook.row(), failed=await _reload(request))


@routes.delete("/api/v4/webhooks")
async def deregister(request: web.Request) -> web.Response:
    hook, endpoint = request.query.get("hook"), request.query.get("endpoint")
    if not hook or not endpoint:
        raise missing_parameter("hook" if not hook else "endpoint")
    try:
        _store(request).deregister(hook, endpoint)
    except ValueError as err:
        raise bad_parameter(str(err)) from None
    return ok(failed=await _reload(request))


@routes.get("/api/v4/webhooks/cache")
async def cache_show(request: web.Request) -> web.Response:
    gathered = await plane_of(request).ask_all("webhooks.cache.show", {})
    totals: Counter = Counter()
    for row in gathered.rows():
        totals[row["stat"], row["endpoint"], row["hook"]] += row["value"]
    rows = [{"stat": stat, "endpoint": endpoint, "hook": hook, "value": value}
            for (stat, endpoint, hook), value in sorted(totals.items())]
    return ok(rows, failed=gathered.failures())


@routes.delete("/api/v4/webhooks/cache")
async def cache_clear(request: web.Request) -> web.Response:
    gathered = await plane_of(request).ask_all("webhooks.cache.clear", {})
    return ok(failed=gathered.failures())
