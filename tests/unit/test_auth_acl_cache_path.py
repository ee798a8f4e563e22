"""The ACL plugin's per-PUBLISH path with the cache on: a cached plain allow is a
plain OK, a cached verdict with limits is still applied to every message, a
purge (reload) asks the sources again."""

from __future__ import annotations

from actormq.auth.acl_rules import Action, ClientInfo
from actormq.auth.provider_acl import AclPlugin
from actormq.auth.verdicts import Verdict
from actormq.conf.load import load_config
from actormq.hooks.plugin import PluginContext
from actormq.hooks.results import OK, Error
from actormq.message import Message

CLIENT = ClientInfo(client_id="c1", username="u1", peer_host="127.0.0.1")


class CountingSource:
    """An ACL source answering one verdict for every topic, counting the questions."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict, self.asked = verdict, 0

    def check(self, client, action, topic):
        self.asked += 1
        return self.verdict

    def reload(self) -> None:
        pass


def plugin_with(verdict: Verdict) -> tuple[AclPlugin, CountingSource]:
    plugin = AclPlugin(context=PluginContext(config=load_config(env={}, overrides={"acl.cache.enable": "true"})))
    plugin.start()
    source = plugin.sources = [CountingSource(verdict)]
    return plugin, source[0]


def test_cached_plain_allow_answers_ok_without_asking_again():
    plugin, source = plugin_with(Verdict(True))
    assert Verdict(True).plain and not Verdict(False).plain and not Verdict(True, max_qos=1).plain
    for _ in range(3):
        assert plugin.on_client_authorize_publish(CLIENT, Message("a/b", b"x")) is OK
    assert source.asked == 1
    plugin.reload()
    assert plugin.on_client_authorize_publish(CLIENT, Message("a/b", b"x")) is OK
    assert source.asked == 2


def test_cached_verdict_with_limits_is_applied_to_each_message():
    plugin, source = plugin_with(Verdict(True, max_qos=0))
    assert plugin.on_client_authorize_publish(CLIENT, Message("a/b", b"x", qos=0)) == OK
    refused = plugin.on_client_authorize_publish(CLIENT, Message("a/b", b"x", qos=1))
    assert isinstance(refused, Error) and "max_qos" in refused.reason
    assert source.asked == 1


def test_cached_deny_stays_a_refusal():
    plugin, source = plugin_with(Verdict(False, source="test"))
    for _ in range(2):
        assert isinstance(plugin.on_client_authorize_publish(CLIENT, Message("a/b", b"x")), Error)
    assert source.asked == 1
    assert plugin._caches["c1"].get(Action.PUBLISH, "a/b") is source.verdict
