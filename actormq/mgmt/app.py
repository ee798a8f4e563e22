"""The management HTTP application (aiohttp): authentication, error envelope,
and the route modules.

Adding routes (any area): write a module with an aiohttp `RouteTableDef`
named `routes` and add its dotted name to `ROUTE_MODULES` (one line):

    # actormq/webhooks/api.py
    from aiohttp import web
    from actormq.mgmt.app import plane_of
    from actormq.mgmt.envelope import ok, page

    routes = web.RouteTableDef()

    @routes.get("/api/v4/webhooks")
    async def list_webhooks(request: web.Request) -> web.Response:
        gathered = await plane_of(request).ask_all("webhooks.list", {})
        return page(request, gathered.rows(), plane_of(request).max_rows)

Handlers run on the control plane's own asyncio loop (a thread of the node
process, never a worker's loop): they ask workers with `plane.ask_all` /
`plane.ask_one` (`actormq.mgmt.channel`) and must not block. Raise
`envelope.ApiError` (or `bad_parameter`, `not_found`) for an error answer.
Every route under `/api/v4` needs HTTP Basic with the application id and
secret; `/metrics` only when `management.metrics.auth = on`; `/health` never.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib
import logging

from aiohttp import web

from actormq.mgmt.envelope import (EMPTY_CREDENTIALS, UNKNOWN_ERROR, WRONG_CREDENTIALS, ApiError,
                                   error_response)

log = logging.getLogger("actormq.mgmt")

PLANE = web.AppKey("plane", object)

ROUTE_MODULES = (
    "actormq.mgmt.routes.node",
    "actormq.mgmt.routes.clients",
    "actormq.mgmt.routes.mqtt",
    "actormq.mgmt.routes.banned",
    "actormq.mgmt.routes.retained",
    "actormq.mgmt.routes.ops",
    "actormq.mgmt.routes.prometheus",
    "actormq.hooks.routes",
    "actormq.webhooks.api",
)

_OPEN_PATHS = ("/health",)


def plane_of(request: web.Request):
    """The `ControlPlane` serving this request."""
    return request.app[PLANE]


def make_app(plane) -> web.Application:
    app = web.Application(middlewares=[_errors, _authenticate])
    app[PLANE] = plane
    for name in ROUTE_MODULES:
        app.router.add_routes(importlib.import_module(name).routes)
    return app


def _needs_credentials(request: web.Request) -> bool:
    path = request.path
    if path == "/metrics":
        return request.app[PLANE].config["management.metrics.auth"]
    return not path.startswith(_OPEN_PATHS)


def check_basic(header: str | None, app_id: str, secret: str) -> None:
    """Raise the EMQX 401 unless `header` is HTTP Basic with this id and secret."""
    if not header or not header.lower().startswith("basic "):
        raise ApiError(401, EMPTY_CREDENTIALS, "missing credentials: HTTP Basic with the "
                       "application id and secret (actormq api-key show)")
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(401, WRONG_CREDENTIALS, "malformed HTTP Basic credentials") from None
    if not user or not password:
        raise ApiError(401, EMPTY_CREDENTIALS, "empty application id or secret")
    good_user = hmac.compare_digest(user.encode(), app_id.encode())
    good_secret = hmac.compare_digest(password.encode(), secret.encode())
    if not (good_user and good_secret):
        raise ApiError(401, WRONG_CREDENTIALS, "wrong application id or secret")


@web.middleware
async def _authenticate(request: web.Request, handler):
    if _needs_credentials(request):
        plane = request.app[PLANE]
        try:
            check_basic(request.headers.get("Authorization"), plane.app_id, plane.secret)
        except ApiError as error:
            response = error_response(error)
            response.headers["WWW-Authenticate"] = 'Basic realm="actormq"'
            return response
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return error_response(ApiError(exc.status, exc.status, exc.reason))
        raise
    except Exception:
        log.exception("management API: %s %s failed", request.method, request.path)
        return error_response(ApiError(500, UNKNOWN_ERROR, "internal error (see the broker's log)"))
