"""The VerneMQ webhooks plugin on real hook chains (actormq.hooks.Hooks) against a real endpoint:
a vernemq.conf webhooks block, decisions with reason codes, rewrites, 3.1.1 vs 5.0 hooks, the start warning."""

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from actormq.actors.messages import Message, SubOptions
from actormq.conf.load import load_config
from actormq.hooks import ClientInfo, Hooks, PluginContext
from actormq.hooks.info import AuthExchange
from actormq.webhooks.plugin import VmqWebhooksPlugin
from actormq.webhooks.specs import RegistrationStore, Webhook, from_config
from tests.hookchains import decided
from tests.webhook_endpoint import Endpoint

VERNEMQ_WEBHOOKS_BLOCK = """\
plugins.vmq_webhooks = on
vmq_webhooks.mywebhook1.hook = on_unsubscribe
vmq_webhooks.mywebhook1.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook2.hook = on_subscribe
vmq_webhooks.mywebhook2.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook3.hook = on_register
vmq_webhooks.mywebhook3.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook4.hook = on_publish
vmq_webhooks.mywebhook4.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook5.hook = on_offline_message
vmq_webhooks.mywebhook5.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook6.hook = on_deliver
vmq_webhooks.mywebhook6.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook7.hook = on_client_wakeup
vmq_webhooks.mywebhook7.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook8.hook = on_client_offline
vmq_webhooks.mywebhook8.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook9.hook = on_client_gone
vmq_webhooks.mywebhook9.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook10.hook = auth_on_subscribe
vmq_webhooks.mywebhook10.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook11.hook = auth_on_register
vmq_webhooks.mywebhook11.endpoint = http://xxx.airdroid.com/mqtt/webhook
vmq_webhooks.mywebhook12.hook = auth_on_publish
vmq_webhooks.mywebhook12.endpoint = http://xxx.airdroid.com/mqtt/webhook
"""

V3 = ClientInfo("c3", "joe", b"secret", "127.0.0.1", 40001, protocol_level=4, clean_start=True)
V5 = ClientInfo("c5", "ann", b"pw", "127.0.0.1", 40002, protocol_level=5, clean_start=False,
                properties={"session_expiry_interval": 30})


def config_file(tmp_path: Path, text: str):
    path = tmp_path / "actormq.conf"
    path.write_text(f"storage.dir = {tmp_path / 'data'}\n" + text)
    return load_config(path, env={})


def test_vernemq_conf_block_pasted_as_is_loads_in_lexical_order(tmp_path):
    webhooks = from_config(config_file(tmp_path, VERNEMQ_WEBHOOKS_BLOCK))
    assert [w.name for w in webhooks] == ["mywebhook1", "mywebhook10", "mywebhook11", "mywebhook12",
                                          "mywebhook2", "mywebhook3", "mywebhook4", "mywebhook5",
                                          "mywebhook6", "mywebhook7", "mywebhook8", "mywebhook9"]
    assert {w.endpoint for w in webhooks} == {"http://xxx.airdroid.com/mqtt/webhook"}
    assert all(w.base64_payload and not w.no_payload and w.response_timeout == 5000 for w in webhooks)


def test_vmq_webhooks_lines_need_the_plugin_switch(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="actormq.webhooks"):
        assert from_config(config_file(tmp_path, VERNEMQ_WEBHOOKS_BLOCK.replace("= on\n", "= off\n", 1))) == []
    assert "plugins.vmq_webhooks is off" in caplog.text


def test_a_webhook_without_endpoint_is_a_config_error(tmp_path):
    from actormq.errors import ConfigError
    with pytest.raises(ConfigError, match="webhooks.w1.endpoint"):
        from_config(config_file(tmp_path, "webhooks.w1.hook = on_publish\n"))
    with pytest.raises(ConfigError, match="http"):
        from_config(config_file(tmp_path, "webhooks.w1.hook = on_publish\nwebhooks.w1.endpoint = ftp://x\n"))


@pytest.fixture
def endpoint():
    server = Endpoint().start()
    yield server
    server.stop()


def run_with_hooks(tmp_path, text, scenario):
    config = config_file(tmp_path, text)

    async def main():
        hooks = Hooks()
        hooks.add(VmqWebhooksPlugin(context=PluginContext(config)))
        await hooks.start()
        try:
            return await scenario(hooks)
        finally:
            await hooks.stop()
    return asyncio.run(main())


def vernemq_block(url: str) -> str:
    return VERNEMQ_WEBHOOKS_BLOCK.replace("http://xxx.airdroid.com/mqtt/webhook", url)


def test_vernemq_conf_webhooks_called_with_vernemq_hook_names(tmp_path, endpoint):
    async def scenario(hooks):
        assert (await decided(hooks.client_authenticate, V3)).allowed
        assert (await decided(hooks.client_authorize_subscribe, V3, "say_name", SubOptions(0))).allowed
        message = Message("say_name", b"hello", 0, False, origin="c3")
        assert (await decided(hooks.client_authorize_publish, V3, message)).allowed
        hooks.client_connected.notify(V3)
        hooks.session_subscribed.notify(V3, "say_name", SubOptions(0))
        assert hooks.message_publish.fold(V3, message) is message
        hooks.client_gone.notify(V3)
        await asyncio.sleep(0.3)

    run_with_hooks(tmp_path, vernemq_block(endpoint.url), scenario)
    endpoint.wait_for(7)
    assert set(endpoint.hooks()) == {"auth_on_register", "auth_on_subscribe", "auth_on_publish", "on_register",
                                     "on_subscribe", "on_publish", "on_client_gone"}
    assert endpoint.bodies("auth_on_subscribe") == [{"username": "joe", "mountpoint": "", "client_id": "c3",
                                                     "topics": [{"topic": "say_name", "qos": 0}]}]
    assert endpoint.bodies("on_publish")[0]["payload"] == "aGVsbG8="


def test_auth_error_is_not_authorized_and_dead_endpoint_is_server_unavailable(tmp_path, endpoint):
    endpoint.answer("auth_on_register", {"result": {"error": "not_allowed"}})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"

    async def scenario(hooks):
        return await decided(hooks.client_authenticate, V3)

    denied = run_with_hooks(tmp_path, f"webhooks.a.hook = auth_on_register\nwebhooks.a.endpoint = {endpoint.url}\n",
                            scenario)
    assert (denied.allowed, denied.reason_code) == (False, 0x87)
    down = run_with_hooks(tmp_path, f"webhooks.a.hook = auth_on_register\nwebhooks.a.endpoint = {dead}\n", scenario)
    assert (down.allowed, down.reason_code) == (False, 0x88)


def test_mqtt5_client_fires_m5_hooks_with_properties_and_modifiers(tmp_path, endpoint):
    endpoint.answer("auth_on_register_m5", {"result": "ok", "modifiers": {
        "max_inflight_messages": 7, "properties": {"p_session_expiry_interval": 5}}})
    text = "".join(f"webhooks.{hook}.hook = {hook}\nwebhooks.{hook}.endpoint = {endpoint.url}\n"
                   for hook in ("auth_on_register_m5", "auth_on_register"))

    async def scenario(hooks):
        return await decided(hooks.client_authenticate, V5)

    decision = run_with_hooks(tmp_path, text, scenario)
    assert dict(decision.modifiers) == {"max_inflight_messages": 7}   # what client.authenticate takes
    assert endpoint.hooks() == ["auth_on_register_m5"]
    assert endpoint.bodies("auth_on_register_m5")[0]["properties"] == {"p_session_expiry_interval": 30}


def test_subscribe_rewrite_and_qos_128_reject(tmp_path, endpoint):
    text = f"webhooks.s.hook = auth_on_subscribe\nwebhooks.s.endpoint = {endpoint.url}\n"

    async def scenario(hooks):
        endpoint.answer("auth_on_subscribe", {"result": "ok", "topics": [{"topic": "rewritten/t", "qos": 1}]})
        rewritten = await decided(hooks.client_authorize_subscribe, V3, "a/b", SubOptions(2))
        endpoint.answer("auth_on_subscribe", {"result": "ok", "topics": [{"topic": "a/b", "qos": 128}]})
        rejected = await decided(hooks.client_authorize_subscribe, V3, "a/b", SubOptions(2))
        return rewritten, rejected

    rewritten, rejected = run_with_hooks(tmp_path, text, scenario)
    assert dict(rewritten.modifiers) == {"topic_filter": "rewritten/t", "qos": 1}
    assert (rejected.allowed, rejected.reason_code) == (False, 0x80)


def test_publish_rewrite_modifiers(tmp_path, endpoint):
    endpoint.answer("auth_on_publish", {"result": "ok", "modifiers": {"topic": "new/t", "qos": 0,
                                                                       "payload": "Ynll", "retain": True}})
    text = f"webhooks.p.hook = auth_on_publish\nwebhooks.p.endpoint = {endpoint.url}\n"

    async def scenario(hooks):
        return await decided(hooks.client_authorize_publish, V3, Message("a/b", b"hi", 1))

    decision = run_with_hooks(tmp_path, text, scenario)
    assert dict(decision.modifiers) == {"topic_name": "new/t", "qos": 0, "payload": b"bye", "retain": True}


def test_enhanced_auth_continue_then_ok(tmp_path, endpoint):
    text = f"webhooks.e.hook = on_auth_m5\nwebhooks.e.endpoint = {endpoint.url}\n"

    async def scenario(hooks):
        endpoint.answer("on_auth_m5", {"result": "ok", "modifiers": {
            "properties": {"p_authentication_data": "Y2hhbGxlbmdl", "p_authentication_method": "X"},
            "reason_code": 24}})
        first = await decided(hooks.client_enhanced_auth, V5, AuthExchange("X", b"hello"))
        endpoint.answer("on_auth_m5", {"result": "ok", "modifiers": {"reason_code": 0}})
        second = await decided(hooks.client_enhanced_auth, V5, AuthExchange("X", b"answer", step=2))
        return first, second

    first, second = run_with_hooks(tmp_path, text, scenario)
    assert first.more and first.auth_data == b"challenge"
    assert second.allowed and not second.more
    assert endpoint.bodies("on_auth_m5")[0]["properties"] == {"p_authentication_method": "X",
                                                              "p_authentication_data": "aGVsbG8="}


def test_only_the_points_with_a_webhook_are_hooked(tmp_path, endpoint):
    text = f"webhooks.p.hook = on_publish\nwebhooks.p.endpoint = {endpoint.url}\n"

    async def scenario(hooks):
        return hooks.client_authenticate, hooks.message_publish, hooks.message_deliver

    authenticate, publish, deliver = run_with_hooks(tmp_path, text, scenario)
    assert authenticate is None and deliver is None and publish is not None


def test_start_warns_that_an_auth_webhook_decides(tmp_path, endpoint, caplog):
    async def scenario(hooks):
        return None

    with caplog.at_level(logging.WARNING, logger="actormq.webhooks"):
        run_with_hooks(tmp_path, vernemq_block(endpoint.url), scenario)
    warnings = [r.getMessage() for r in caplog.records if "DECIDES" in r.getMessage()]
    assert len(warnings) == 3 and all('"next"' in text for text in warnings)


def test_runtime_registrations_are_persisted_and_picked_up(tmp_path, endpoint):
    config = config_file(tmp_path, "")
    store = RegistrationStore(config["storage.dir"])
    store.register(Webhook("auth_on_register", endpoint.url, response_timeout=1000))
    with pytest.raises(ValueError, match="already registered"):
        store.register(Webhook("auth_on_register", endpoint.url))
    assert RegistrationStore(config["storage.dir"]).load() == [Webhook("auth_on_register", endpoint.url,
                                                                       response_timeout=1000)]
    assert VmqWebhooksPlugin.wanted(config)
    endpoint.answer("auth_on_register", {"result": {"error": "no"}})

    async def scenario(hooks):
        return await decided(hooks.client_authenticate, V3)

    assert not run_with_hooks(tmp_path, "", scenario).allowed
    store.deregister("auth_on_register", endpoint.url)
    assert not VmqWebhooksPlugin.wanted(config)
    with pytest.raises(ValueError, match="not registered"):
        store.deregister("auth_on_register", endpoint.url)
