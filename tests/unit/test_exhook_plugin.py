"""ExHook against a real grpc.aio HookProvider server written from our exhook.proto: hooks
loaded at start, a denied login, a rewritten and a dropped message, topic filters, server
killed mid-run (request_failed_action, drops counted, reconnect), server down at start."""

import asyncio
import socket

import pytest

from actormq.actors.messages import Message, SubOptions
from actormq.conf.load import load_config
from actormq.errors import ConfigError
from actormq.hooks import DROP, ClientInfo, Hooks, PluginContext
from actormq.exhook.plugin import ExhookPlugin, parse_auto_reconnect
from tests.hookchains import decided, folded
from tests.exhook_provider import ProviderServer

HOOKS = {"client.authenticate": [], "client.check_acl": [], "client.connected": [],
         "message.publish": ["t/#"], "message.delivered": ["t/#"]}
GOOD = ClientInfo("c1", "good", b"pw", "127.0.0.1", 40001)
BAD = ClientInfo("c2", "bad", b"pw", "127.0.0.1", 40002)


def config(tmp_path, url, extra=""):
    path = tmp_path / "actormq.conf"
    path.write_text(f"storage.dir = {tmp_path / 'data'}\nexhook.server.default.url = {url}\n"
                    f"exhook.request_timeout = 2s\n{extra}")
    return load_config(path, env={})


def run(cfg, scenario):
    async def main():
        hooks = Hooks()
        plugin = ExhookPlugin(context=PluginContext(cfg))
        hooks.add(plugin)
        await hooks.start()
        try:
            return await scenario(hooks, plugin)
        finally:
            await hooks.stop()
    return asyncio.run(main())


async def dropped_then_back(hooks, plugin, server) -> int:
    """Notify client.connected while the server is down (the drops counted so far), then start
    the server and wait for the plugin to see it back (auto_reconnect)."""
    hooks.client_connected.notify(GOOD)
    await asyncio.sleep(0.1)
    plugin.notifier.refresh()
    dropped = plugin.notifier.counters["default", "dropped"]
    server.start()
    for _ in range(50):
        await asyncio.sleep(0.1)
        if plugin.servers[0].up:
            break
    return dropped


@pytest.fixture
def server(tmp_path):
    provider = ProviderServer(HOOKS, tmp_path / "provider.log").start()
    yield provider
    provider.kill()


def test_loaded_hooks_decide_rewrite_and_filter(tmp_path, server):
    async def scenario(hooks, plugin):
        assert hooks.session_created is None and hooks.client_connect is None   # not loaded: not hooked
        good = await decided(hooks.client_authenticate, GOOD)
        bad = await decided(hooks.client_authenticate, BAD)
        denied = await decided(hooks.client_authorize_publish, GOOD, Message("acl/denied", b"x"))
        allowed = await decided(hooks.client_authorize_publish, GOOD, Message("acl/ok", b"x"))
        ignored = await decided(hooks.client_authorize_subscribe, GOOD, "other/#", SubOptions(1))
        rewritten = await folded(hooks.message_publish, GOOD, Message("t/rewrite", b"p", 1, origin="c1"))
        dropped = await folded(hooks.message_publish, GOOD, Message("t/drop", b"p", 1, origin="c1"))
        other = Message("other/topic", b"p", 1, origin="c1")
        unfiltered = await folded(hooks.message_publish, GOOD, other)
        hooks.client_connected.notify(GOOD)
        hooks.message_deliver.fold("c9", Message("t/delivered", b"d", 0, origin="c1"))
        hooks.message_deliver.fold("c9", Message("other/delivered", b"d", 0, origin="c1"))
        await asyncio.sleep(0.3)
        return good, bad, denied, allowed, ignored, rewritten, dropped, unfiltered is other

    good, bad, denied, allowed, ignored, rewritten, dropped, same = run(config(tmp_path, server.url), scenario)
    assert good.allowed and (bad.allowed, bad.reason_code) == (False, 0x87)
    assert (denied.allowed, denied.reason_code) == (False, 0x87) and allowed.allowed
    assert ignored.allowed and ignored.decided_by == "default"
    assert rewritten.topic_name == "t/rewritten" and rewritten.payload == b"p"
    assert dropped is DROP and same
    published = server.wait_for("OnMessagePublish", 2)
    assert [r["message"]["topic"] for r in published] == ["t/rewrite", "t/drop"]   # other/topic filtered out
    assert published[0]["message"]["headers"]["username"] == "good" and published[0]["message"]["from"] == "c1"
    [delivered] = server.wait_for("OnMessageDelivered")
    assert delivered["clientinfo"]["clientid"] == "c9" and delivered["message"]["topic"] == "t/delivered"
    [connected] = server.wait_for("OnClientConnected")
    assert connected["clientinfo"]["username"] == "good" and connected["clientinfo"]["peerhost"] == "127.0.0.1"
    [loaded] = server.wait_for("OnProviderLoaded")
    assert loaded["broker"]["sysdescr"] == "actormq"
    auth = server.wait_for("OnClientAuthenticate", 2)[0]
    assert auth["clientinfo"]["password"] == "pw" and auth["clientinfo"]["clientid"] == "c1"
    server.wait_for("OnProviderUnloaded")


def test_server_killed_mid_run_then_back(tmp_path, server):

    async def scenario(hooks, plugin):
        assert (await decided(hooks.client_authenticate, GOOD)).allowed
        server.kill()
        down = await decided(hooks.client_authenticate, GOOD)
        again = await decided(hooks.client_authenticate, GOOD)       # known down: answered at once
        dropped = await dropped_then_back(hooks, plugin, server)
        back = await decided(hooks.client_authenticate, BAD)
        return down, again, dropped, back

    down, again, dropped, back = run(config(tmp_path, server.url, "exhook.auto_reconnect = 1s\n"), scenario)
    assert (down.allowed, down.reason_code) == (False, 0x88)
    assert (again.allowed, again.reason_code) == (False, 0x88)
    assert dropped == 1
    assert (back.allowed, back.reason_code) == (False, 0x87)


def test_ignore_policy_when_the_server_is_down_at_start(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def scenario(hooks, plugin):
        assert hooks.message_publish is not None       # every point hooked: the server may come later
        message = Message("t/x", b"p")
        return (await decided(hooks.client_authenticate, GOOD),
                await folded(hooks.message_publish, GOOD, message) is message)

    decision, kept = run(config(tmp_path, url, "exhook.request_failed_action = ignore\n"), scenario)
    assert decision.decided_by == "default"         # exhook said next; the chain's default decided
    assert kept


def test_down_at_start_decisions_fail_closed_until_the_server_loads(tmp_path):
    """A server started late: until it answers OnProviderLoaded every decision it could take
    follows request_failed_action (deny) at once; then only what it loaded is asked."""
    late = ProviderServer({"client.authenticate": [], "message.publish": ["t/#"]}, tmp_path / "late.log")

    async def scenario(hooks, plugin):
        loop = asyncio.get_running_loop()
        started = loop.time()
        before = (await decided(hooks.client_authenticate, GOOD),
                  await decided(hooks.client_authorize_publish, GOOD, Message("acl/ok", b"x")),
                  await decided(hooks.client_authorize_subscribe, GOOD, "x/#", SubOptions(0)),
                  await folded(hooks.message_publish, GOOD, Message("other/x", b"p", 0, origin="c1")))
        waited = loop.time() - started
        dropped = await dropped_then_back(hooks, plugin, late)
        other = Message("other/x", b"p", 0, origin="c1")
        after = (await decided(hooks.client_authenticate, BAD),
                 await decided(hooks.client_authorize_publish, GOOD, Message("acl/denied", b"x")),
                 await folded(hooks.message_publish, GOOD, other) is other,
                 await folded(hooks.message_publish, GOOD, Message("t/rewrite", b"p", 0, origin="c1")))
        return before, waited, dropped, after

    try:
        before, waited, dropped, after = run(config(tmp_path, late.url, "exhook.auto_reconnect = 1s\n"),
                                             scenario)
    finally:
        late.kill()
    authenticate, publish_acl, subscribe_acl, message = before
    assert (authenticate.allowed, authenticate.reason_code) == (False, 0x88)
    assert (publish_acl.allowed, publish_acl.reason_code) == (False, 0x87)
    assert (subscribe_acl.allowed, subscribe_acl.reason_code) == (False, 0x87)
    assert message is DROP
    assert waited < 1.0                             # answered at once, well within the 2 s timeout
    assert dropped == 2                             # client.subscribe and client.connected: counted
    bad, acl, unfiltered, rewritten = after
    assert (bad.allowed, bad.reason_code) == (False, 0x87)
    assert acl.allowed and acl.decided_by == "default"     # client.check_acl not loaded: not asked
    assert unfiltered and rewritten.topic_name == "t/rewritten"
    assert not late.requests("OnClientCheckAcl") and not late.requests("OnClientConnected")


def test_auto_reconnect_values_and_bad_urls(tmp_path):
    assert parse_auto_reconnect("60s") == 60 and parse_auto_reconnect("1m") == 60
    assert parse_auto_reconnect("false") is None
    with pytest.raises(ValueError):
        parse_auto_reconnect("soon")
    with pytest.raises(ConfigError, match="exhook.server.default.url"):
        ExhookPlugin(context=PluginContext(config(tmp_path, "grpc://127.0.0.1:9000")))
    with pytest.raises(ConfigError, match="exhook.auto_reconnect"):
        ExhookPlugin(context=PluginContext(config(tmp_path, "http://127.0.0.1:9", "exhook.auto_reconnect = soon\n")))
