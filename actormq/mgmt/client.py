"""The management API client every admin CLI command uses.

`connect(config_file, data_dir, api, user, secret)` finds the running node:
with `--api URL` (and `--user`/`--secret`, else the data dir's credentials)
it talks to that URL; otherwise it reads the state file the node wrote into
its data dir (`storage.dir` of the config, or `--data-dir`). No state file,
or a node that does not answer: `NoBroker` ("no running broker found for data
dir …; start one with actormq run").

    client = connect(None, None, None, None, None)
    body = client.get("/api/v4/clients", {"_limit": 10})     # the EMQX envelope
    rows = client.command("acl.reload", {})["data"]           # POST /api/v4/admin/acl.reload
    client.stream("/api/v4/actormq/trace/client", {"clientid": "c1"}, print)

Every call is synchronous (aiohttp under `asyncio.run`); an error answer
raises `ApiFailure` with the EMQX code and message.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, Callable

from actormq.errors import ActormqError
from actormq.mgmt import credentials

REQUEST_TIMEOUT = 30.0


class NoBroker(ActormqError):
    """No running broker answers for that data dir or URL."""


class ApiFailure(ActormqError):
    """The API answered with an error envelope."""

    def __init__(self, status: int, code: Any, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ApiClient:
    """Synchronous calls to one management API."""

    def __init__(self, url: str, user: str, secret: str, where: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.credentials = (user, secret)
        self.where = where or f"the management API at {self.url}"

    def get(self, path: str, params: dict | None = None) -> dict:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> dict:
        return self._call("POST", path, body=body)

    def put(self, path: str, body: Any = None) -> dict:
        return self._call("PUT", path, body=body)

    def delete(self, path: str, params: dict | None = None) -> dict:
        return self._call("DELETE", path, params=params)

    def rows(self, path: str, params: dict | None = None, limit: int | None = None) -> tuple[list, list]:
        """Every row of a paged list route (page after page), at most `limit`; and the
        workers that did not answer (`failed` of any page)."""
        rows, failed, number = [], [], 1
        while True:
            body = self.get(path, dict(params or {}, _page=number))
            rows += body["data"]
            failed += [f for f in body.get("failed", ()) if f not in failed]
            if not body["meta"]["hasnext"] or (limit is not None and len(rows) >= limit):
                return rows[:limit] if limit is not None else rows, failed
            number += 1

    def command(self, name: str, args: dict | None = None) -> dict:
        """Run a worker-side admin command on every worker (POST /api/v4/admin/{name})."""
        return self.post(f"/api/v4/admin/{name}", args or {})

    def text(self, path: str, params: dict | None = None) -> str:
        """A non-JSON body (e.g. Prometheus text)."""
        return asyncio.run(self._request("GET", path, params, None, raw=True))

    def stream(self, path: str, params: dict | None, on_item: Callable[[dict], None]) -> None:
        """Call on_item for each JSON line of a streamed answer until it ends."""
        asyncio.run(self._stream(path, params, on_item))

    def _call(self, method: str, path: str, params: dict | None = None, body: Any = None) -> dict:
        return asyncio.run(self._request(method, path, params, body))

    def _session(self, timeout: float | None = REQUEST_TIMEOUT):
        import aiohttp      # here: the CLI starts faster without it
        return aiohttp.ClientSession(headers={"Authorization": aiohttp.encode_basic_auth(*self.credentials)},
                                     timeout=aiohttp.ClientTimeout(total=timeout))

    async def _request(self, method: str, path: str, params, body, raw: bool = False):
        import aiohttp
        try:
            async with self._session() as session:
                async with session.request(method, self.url + path, params=_clean(params),
                                           json=body) as response:
                    text = await response.text()
                    if raw and response.status == 200:
                        return text
                    return _decode(response.status, text)
        except aiohttp.ClientConnectionError as exc:
            raise NoBroker(f"{self.where} does not answer ({exc}); start one with actormq run") from None
        except asyncio.TimeoutError:
            raise NoBroker(f"{self.where} did not answer within {REQUEST_TIMEOUT:g} s") from None

    async def _stream(self, path: str, params, on_item) -> None:
        import aiohttp
        try:
            async with self._session(timeout=None) as session:
                async with session.get(self.url + path, params=_clean(params)) as response:
                    if response.status != 200:
                        _decode(response.status, await response.text())
                    async for line in response.content:
                        if line.strip():
                            on_item(json.loads(line))
        except aiohttp.ClientConnectionError as exc:
            raise NoBroker(f"{self.where} does not answer ({exc})") from None


def _clean(params: dict | None) -> dict | None:
    if params is None:
        return None
    return {key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in params.items() if value is not None}


def _decode(status: int, text: str) -> dict:
    try:
        body = json.loads(text)
    except ValueError:
        raise ApiFailure(status, None, f"HTTP {status}: {text[:200]}") from None
    if status >= 400 or (isinstance(body, dict) and body.get("code", 0) != 0):
        message = body.get("message", text) if isinstance(body, dict) else text
        raise ApiFailure(status, body.get("code") if isinstance(body, dict) else None, message)
    return body


def connect(config_file: str | None, data_dir: str | None, api: str | None, user: str | None,
            secret: str | None) -> ApiClient:
    """The client of the running node (see the module docstring)."""
    from actormq.conf.load import load_config

    overrides = {"storage.dir": data_dir} if data_dir else {}
    config = load_config(config_file, overrides=overrides)
    directory = os.path.abspath(config["storage.dir"])
    if api:
        state = credentials.read_state(directory) or {}
        user = user or state.get("user") or config["management.default_application.id"]
        if secret is None:
            secret = state.get("secret") or credentials.application_secret(config)
        return ApiClient(api, user, secret)
    state = credentials.read_state(directory)
    if state is None:
        raise NoBroker(f"no running broker found for data dir {directory}; start one with actormq run")
    if not state.get("url"):
        raise NoBroker(f"the broker running on data dir {directory} has no management API "
                       "(management.listener.http = 0)")
    where = f"the broker of data dir {directory} ({state['url']})"
    return ApiClient(state["url"], user or state["user"], secret or state["secret"], where)
