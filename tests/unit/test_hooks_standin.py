"""Stand-ins: while every provider of a fold chain stands in for its hook, the chain runs the
stand-ins (which count) and calls no hook; as soon as one provider's are released, or a
provider without stand-ins is in the chain, the hooks are called again as before. A rebuild
of the chains (a plugin disabled, enabled, added) keeps what is engaged; decide and notify
points are never stood in for; a stand-in's run is no call of the hook. The EMQX web hook's
stand-ins count what its rules want, never a $SYS/ topic."""

from __future__ import annotations

from actormq.actors.messages import Message
from actormq.hooks import NEXT, ClientInfo, HookPoint, Hooks, Plugin
from actormq.hooks.standin import StandIns

CLIENT = ClientInfo("c1", protocol_level=5)
MESSAGE = Message("t/1", b"x", 0, False)


class Notifying(Plugin):
    """Counts its hook's calls, and (engaged) its stand-in's runs, at both fold points and at
    a decide point."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.called: list[str] = []
        self.stood: list[str] = []
        self.stand_ins = StandIns({HookPoint.MESSAGE_PUBLISH: self._stand_in("publish"),
                                   HookPoint.MESSAGE_DELIVER: self._stand_in("deliver"),
                                   HookPoint.CLIENT_AUTHORIZE_PUBLISH: self._stand_in("authorize")})

    def _stand_in(self, what: str):
        def counted(who, message):
            self.stood.append(what)
            return message
        return counted

    def on_message_publish(self, client, message):
        self.called.append("publish")

    def on_message_deliver(self, client_id, message):
        self.called.append("deliver")

    def on_client_authorize_publish(self, client, message):
        self.called.append("authorize")
        return NEXT


class Plain(Plugin):
    name = "plain"

    def __init__(self) -> None:
        super().__init__()
        self.called = 0

    def on_message_publish(self, client, message):
        self.called += 1


def run(hooks: Hooks, times: int = 3) -> None:
    for _ in range(times):
        assert hooks.message_publish.fold(CLIENT, MESSAGE) is MESSAGE
        assert hooks.message_deliver.fold("c2", MESSAGE) is MESSAGE
        assert hooks.client_authorize_publish.decide(CLIENT, MESSAGE).allowed


def test_engaged_stand_ins_run_instead_of_the_hooks_and_released_ones_give_the_hooks_back():
    plugin = Notifying("n")
    hooks = Hooks()
    hooks.add(plugin)
    run(hooks)
    assert plugin.called.count("publish") == 3 and plugin.stood == []
    plugin.stand_ins.engage()
    run(hooks)
    assert plugin.stood == ["publish", "deliver"] * 3
    assert plugin.called.count("publish") == plugin.called.count("deliver") == 3
    assert plugin.called.count("authorize") == 6        # a decide point is never stood in for
    plugin.stand_ins.release()
    run(hooks)
    assert plugin.called.count("publish") == plugin.called.count("deliver") == 6
    assert len(plugin.stood) == 6
    calls = {row["name"]: row["points"] for row in hooks.describe()}["n"]
    assert calls["message.publish"]["calls"] == calls["message.deliver"]["calls"] == 6    # the hook's


def test_a_chain_stands_in_only_while_every_provider_does():
    first, second = Notifying("a"), Notifying("b")
    hooks = Hooks()
    hooks.add(first)
    hooks.add(second)
    first.stand_ins.engage()
    run(hooks, 1)
    assert first.stood == [] and first.called.count("publish") == second.called.count("publish") == 1
    second.stand_ins.engage()
    run(hooks, 1)
    assert first.stood == second.stood == ["publish", "deliver"]
    assert first.called.count("publish") == 1
    plain = Plain()
    hooks.add(plain)            # a provider without stand-ins at message.publish: its hooks are called
    run(hooks, 1)
    assert plain.called == 1 and first.called.count("publish") == second.called.count("publish") == 2
    assert first.stood == second.stood == ["publish", "deliver", "deliver"]
    hooks.disable("plain")      # a rebuild: what is engaged stays engaged
    run(hooks, 1)
    assert first.stood == second.stood == ["publish", "deliver", "deliver", "publish", "deliver"]
    assert first.called.count("publish") == 2
    hooks.remove("a")
    second.stand_ins.release()
    run(hooks, 1)
    assert second.called.count("publish") == 3 and len(first.stood) == 5


def test_a_plugin_replaced_while_engaged_leaves_the_new_chains_to_the_new_instance():
    old, new = Notifying("n"), Notifying("n")
    hooks = Hooks()
    hooks.add(old)
    old.stand_ins.engage()
    hooks.replace("n", new)
    run(hooks, 1)
    assert new.called.count("publish") == 1 and old.stood == []
    old.stand_ins.release()     # the old instance's sender comes back: nothing of the new changes
    new.stand_ins.engage()
    old.stand_ins.engage()
    run(hooks, 1)
    assert new.stood == ["publish", "deliver"] and old.stood == []


def test_the_emqx_web_hooks_stand_ins_count_what_its_rules_want_and_never_a_sys_topic(tmp_path):
    from actormq.conf.load import load_config
    from actormq.hooks import PluginContext
    from actormq.webhooks.emqx_plugin import EmqxWebHookPlugin
    from tests.unit.test_emqx_webhook import EMQX_WEB_HOOK_RULES
    (tmp_path / "actormq.conf").write_text(f"storage.dir = {tmp_path / 'data'}\n" + EMQX_WEB_HOOK_RULES)
    plugin = EmqxWebHookPlugin(context=PluginContext(load_config(tmp_path / "actormq.conf", env={})))
    hooks = Hooks()
    hooks.add(plugin)
    plugin.stand_ins.engage()       # as its sender does when the credit runs out
    for topic in ("a/b/c", "a/b/d", "foo/bar", "$SYS/broker/uptime"):
        message = Message(topic, b"hello", 1, False)
        assert hooks.message_publish.fold(CLIENT, message) is message      # rules: a/b/c, foo/#
        assert hooks.message_deliver.fold("c2", message) is message        # a rule for every topic
    assert plugin.notifier._queues == {}        # nothing was made or queued
    url = plugin.web_hook.url
    assert plugin.notifier.counters[url, "dropped"] == 2 + 3
