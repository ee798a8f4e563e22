"""A real HTTP client (aiohttp) for the management API of a test broker, and
the admin CLI run as a subprocess against it."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.integration.brokers import run_cli


def credentials(broker) -> tuple[str, str]:
    state = json.loads((broker.data_dir / "api.json").read_text())
    return state["user"], state["secret"]


async def _call(url: str, method: str, path: str, headers, params, body, raw: bool):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        async with session.request(method, url + path, params=params, json=body,
                                   headers=headers) as response:
            text = await response.text()
            return response.status, (text if raw else json.loads(text)), response.headers


def call(broker, method: str, path: str, params: dict | None = None, body=None, auth=True,
         raw: bool = False):
    """(status, decoded JSON body or text) of one request; auth=True uses the broker's
    credentials, a (user, secret) tuple others, None none."""
    if auth is True:
        auth = credentials(broker)
    headers = {"Authorization": aiohttp.encode_basic_auth(*auth)} if auth else {}
    status, body, _headers = asyncio.run(_call(broker.api_url, method, path, headers, params, body, raw))
    return status, body


def get(broker, path: str, **params):
    status, body = call(broker, "GET", path, params=params or None)
    assert status == 200, body
    assert body["code"] == 0, body
    return body


def cli(broker, *args: str, timeout: float = 30.0):
    """Run `actormq ARGS --data-dir <the broker's>` (the CLI finds the node by its state file)."""
    return run_cli(*args, "--data-dir", str(broker.data_dir), timeout=timeout)


def module_broker(tmp_path_factory, name: str, workers: int = 2, settings: dict | None = None):
    """Body of a module-scoped fixture: a broker with its API, stopped after the module."""
    from tests.integration import clients
    from tests.integration.brokers import actormq_only, start_broker
    actormq_only("the management API is actormq's")
    broker = start_broker(tmp_path_factory.mktemp(name), workers=workers, settings=settings)
    yield broker
    clients.close_all()
    broker.stop()
