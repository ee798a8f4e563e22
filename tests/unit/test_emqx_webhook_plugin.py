"""The EMQX 4 web hook plugin on real hook chains, POSTing to a real endpoint: events of the
rules only, topic filters, $SYS never sent, nothing waits, messages kept as they are."""

import asyncio

from actormq.actors.messages import Message, SubOptions
from actormq.conf.load import load_config
from actormq.hooks import ClientInfo, Hooks, PluginContext
from actormq.webhooks.emqx_plugin import EmqxWebHookPlugin
from tests.unit.test_emqx_webhook import EMQX_WEB_HOOK_RULES
from tests.webhook_endpoint import Endpoint

CLIENT = ClientInfo("mqttx_84be94ff", "user", b"123456", "192.168.200.10", 50000, protocol_level=4,
                    keepalive=60)


def run(tmp_path, text, scenario):
    path = tmp_path / "actormq.conf"
    path.write_text(f"storage.dir = {tmp_path / 'data'}\n" + text)
    config = load_config(path, env={})

    async def main():
        hooks = Hooks()
        plugin = EmqxWebHookPlugin(context=PluginContext(config))
        hooks.add(plugin)
        await hooks.start()
        try:
            await scenario(hooks)
            await asyncio.sleep(0.05)
            await plugin.notifier.drain(2)
            await asyncio.sleep(0.1)
        finally:
            await hooks.stop()
    asyncio.run(main())


def test_emqx_conf_events_reach_the_endpoint_with_4x_bodies(tmp_path):
    endpoint = Endpoint().start()
    try:
        rules = EMQX_WEB_HOOK_RULES.replace("http://192.168.200.10:8991/mqtt/webhook", endpoint.url)

        async def scenario(hooks):
            hooks.client_connected.notify(CLIENT)
            await asyncio.sleep(0.01)       # the client's next packet comes in a later loop turn
            decision = hooks.client_authorize_subscribe.decide(CLIENT, "foo/#", SubOptions(1))
            assert decision.allowed
            for topic in ("a/b/c", "a/b/d", "foo/bar", "$SYS/broker/uptime"):
                message = Message(topic, b"hello", 1, False, timestamp=1591690815.5, origin="mqttx_84be94ff")
                assert hooks.message_publish.fold(CLIENT, message) is message
            await asyncio.sleep(0.01)
            hooks.client_disconnected.notify(CLIENT, "normal")

        run(tmp_path, rules, scenario)
        bodies = [body for _, body in endpoint.wait_for(5)]
        actions = [body["action"] for body in bodies]
        assert actions[0] == "client_connected" and actions[-1] == "client_disconnected"
        assert sorted(actions) == sorted(["client_connected", "client_subscribe", "message_publish",
                                          "message_publish", "client_disconnected"])
        published = [body for body in bodies if body["action"] == "message_publish"]
        assert [body["topic"] for body in published] == ["a/b/c", "foo/bar"]
        assert published[0] == {"action": "message_publish", "node": "actormq@127.0.0.1",
                                 "from_client_id": "mqttx_84be94ff", "from_username": "user",
                                 "topic": "a/b/c", "qos": 1, "retain": False, "payload": "hello",
                                 "ts": 1591690815500}
        connected = bodies[0]
        assert {k: connected[k] for k in ("clientid", "username", "ipaddress", "keepalive", "proto_ver")} == {
            "clientid": "mqttx_84be94ff", "username": "user", "ipaddress": "192.168.200.10",
            "keepalive": 60, "proto_ver": 4}
        assert isinstance(connected["connected_at"], int)
        headers = {k.lower(): v for k, v in endpoint.requests[0][0].items()}
        assert headers["content-type"] == "application/json" and "vernemq-hook" not in headers
    finally:
        endpoint.stop()


def test_only_the_points_of_the_rules_are_hooked(tmp_path):
    text = 'web.hook.url = http://127.0.0.1:9/\nweb.hook.rule.client.connected.1 = {"action": "on_client_connected"}\n'
    seen = {}

    async def scenario(hooks):
        seen.update(publish=hooks.message_publish, connected=hooks.client_connected)

    run(tmp_path, text, scenario)
    assert seen["publish"] is None and seen["connected"] is not None
