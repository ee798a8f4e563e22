"""A CONNECT whose auth_on_register answer is in the auth cache is accepted inside the
`data_received` that brought it: no task, no future, no turn of the event loop before its
session is open, and the endpoint is not asked. A miss waits for the endpoint (the session
opens later) and fills the cache. The same with two endpoints on the hook (the general
`decide` path) as with one (the direct lookup). The in-process core (tests/unit/core_harness)
against a real aiohttp endpoint in its own thread."""

from __future__ import annotations

import asyncio

import pytest

from actormq.conf.load import load_config
from actormq.hooks import PluginContext
from actormq.transport.codec import Connect, encode
from actormq.webhooks.plugin import VmqWebhooksPlugin
from tests.unit.core_harness import Client, Core
from tests.webhook_endpoint import Endpoint, Scripted


@pytest.fixture(scope="module")
def endpoint():
    server = Endpoint().start()
    server.respond = lambda hook, body: Scripted({"result": "ok"}, headers={"Cache-Control": "max-age=60"})
    yield server
    server.stop()


def core_with_webhooks(tmp_path, urls: list[str]) -> tuple[Core, VmqWebhooksPlugin]:
    lines = "".join(f"webhooks.w{index}.hook = auth_on_register\nwebhooks.w{index}.endpoint = {url}\n"
                    for index, url in enumerate(urls))
    (tmp_path / "actormq.conf").write_text(f"storage.dir = {tmp_path / 'data'}\n{lines}")
    core = Core()
    plugin = VmqWebhooksPlugin(context=PluginContext(load_config(tmp_path / "actormq.conf", env={})))
    core.broker.hooks.add(plugin)
    core.loop.run_until_complete(core.broker.hooks.start())
    return core, plugin


def connect_in_loop(core: Core, client_id: str, port: int) -> tuple[Client, bool]:
    """Feed a CONNECT from inside the running loop; whether its session was open when
    `data_received` returned. Then run the loop until the CONNACK is out."""
    client = Client(core, 4, port=port)

    async def feed() -> bool:
        client.conn.data_received(encode(Connect(client_id, protocol_level=4, username="joe",
                                                 password=b"pw"), 4))
        at_once = client.conn.session is not None
        for _ in range(200):
            if client.wire.written:
                break
            await asyncio.sleep(0.01)
        return at_once
    return client, core.loop.run_until_complete(feed())


@pytest.mark.parametrize("endpoints", [1, 2])
def test_a_cached_connect_is_accepted_within_data_received(tmp_path, endpoint, endpoints):
    core, plugin = core_with_webhooks(tmp_path, [endpoint.url + f"/{index}" for index in range(endpoints)])
    try:
        client_id = f"at-once-{endpoints}"
        asked_before = len(endpoint.requests)
        first, at_once = connect_in_loop(core, client_id, 40001)
        assert not at_once                          # a miss: the endpoint is asked first
        assert first.received()[0].reason_code == 0
        assert len(endpoint.requests) == asked_before + 1
        first.drop()
        for port in (40002, 40003):                 # another peer port: the same key
            again, at_once = connect_in_loop(core, client_id, port)
            assert at_once
            assert again.received()[0].reason_code == 0
            again.drop()
        assert len(endpoint.requests) == asked_before + 1
        hits = {(row["stat"], row["endpoint"]): row["value"] for row in plugin.calls.cache.stats()}
        assert hits["hits", endpoint.url + "/0"] == 2
    finally:
        core.loop.run_until_complete(core.broker.hooks.stop())
        core.close()
