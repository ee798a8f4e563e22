"""The connection's memo of allowed publish topics: the ACL cache's plain allows, which
the core reads before it runs the authorization chain. A permission change is never
staler than acl.cache.ttl; a purge (reload / SIGHUP, the management API) takes effect
at the next PUBLISH; a deny is never remembered as an allow; a client id taken over by
another user starts anew; a plugin ahead of the ACL on the chain is always asked."""

from __future__ import annotations

import time

import pytest

from actormq.auth.verdicts import Verdict
from actormq.conf import load_config
from actormq.hooks import NEXT, Error, Plugin
from actormq.hooks.loader import build_hooks, check_plugins
from actormq.transport.codec import Puback, Publish, Subscribe, Subscription
from tests.unit.core_harness import Core

RULES = ('{allow, {user, "u1"}, publish, ["open/#"]}.\n'
         '{allow, all, subscribe, ["#"]}.\n'
         '{deny, all}.\n')
ALLOWED, REFUSED = 0x00, 0x87


class Broker:
    """A broker in process with the file ACL (cache on), a subscriber to everything and
    QoS 1 publishers whose PUBACK says allowed (0x00) or refused (0x87)."""

    def __init__(self, tmp_path, rules: str = RULES, **settings: str) -> None:
        self.acl_file = tmp_path / "acl.conf"
        self.acl_file.write_text(rules)
        overrides = {"sys_interval": "0", "acl.file": str(self.acl_file), **settings}
        self.core = Core(**overrides)
        config = load_config(env={}, overrides=overrides)
        self.hooks = self.core.broker.hooks = build_hooks(config, check_plugins(config))
        self.core.loop.run_until_complete(self.hooks.start())
        self.acl = self.hooks.get("acl").plugin
        subscriber = self.core.client(5)
        subscriber.connect("sub", username="watcher")
        subscriber.send(Subscribe(1, [Subscription("#", 0)]))
        self.subscriber = subscriber
        self._ids = 0

    def publisher(self, client_id: str = "pub", username: str = "u1"):
        client = self.core.client(5)
        assert client.connect(client_id, username=username).reason_code == 0
        return client

    def publish(self, client, topic: str) -> int:
        self._ids += 1
        client.send(Publish(topic, b"x", 1, False, False, self._ids))
        (ack,) = [packet for packet in client.received() if isinstance(packet, Puback)]
        return ack.reason_code

    def memo_of(self, client) -> dict:
        memo = client.conn.publish_memo
        return {} if memo is None else dict(memo[1])


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path)
    yield broker
    broker.core.close()


def test_an_allow_is_remembered_and_answered_without_the_chain(broker):
    client = broker.publisher()
    assert broker.publish(client, "open/1") == ALLOWED
    assert "open/1" in broker.memo_of(client)
    calls = broker.hooks.describe()[0]["points"]["client.authorize_publish"]["calls"]
    for _ in range(5):
        assert broker.publish(client, "open/1") == ALLOWED
    assert broker.hooks.describe()[0]["points"]["client.authorize_publish"]["calls"] == calls


def test_a_deny_is_never_remembered(broker):
    client = broker.publisher()
    for _ in range(3):
        assert broker.publish(client, "closed/1") == REFUSED
    assert broker.memo_of(client) == {}
    assert broker.publish(client, "open/1") == ALLOWED      # the same path lets an allow through


def test_reload_takes_effect_at_the_next_publish(broker):
    client = broker.publisher()
    assert broker.publish(client, "open/1") == ALLOWED
    broker.acl_file.write_text('{allow, all, subscribe, ["#"]}.\n{deny, all}.\n')
    broker.acl.reload()                                     # actormq acl reload / SIGHUP
    assert broker.memo_of(client) == {}
    assert broker.publish(client, "open/1") == REFUSED
    assert broker.memo_of(client) == {}


def test_purge_of_one_client_through_the_api_takes_effect_at_once(broker):
    client = broker.publisher()
    assert broker.publish(client, "open/1") == ALLOWED
    source = broker.acl.sources[0]
    source.check = lambda client, action, topic: Verdict(False, source="changed")
    assert broker.publish(client, "open/1") == ALLOWED      # cached, as EMQX: until purged or stale
    assert broker.acl.clear_cache("pub")                    # DELETE /api/v4/clients/pub/acl_cache
    assert broker.publish(client, "open/1") == REFUSED


def test_a_changed_permission_is_never_staler_than_the_ttl(tmp_path):
    broker = Broker(tmp_path, **{"acl.cache.ttl": "1s"})
    client = broker.publisher()
    assert broker.publish(client, "open/1") == ALLOWED
    (expires,) = broker.memo_of(client).values()
    assert time.monotonic() < expires <= time.monotonic() + 1.0
    broker.acl.sources[0].check = lambda client, action, topic: Verdict(False, source="changed")
    time.sleep(max(0.0, expires - time.monotonic()) + 0.01)
    assert broker.publish(client, "open/1") == REFUSED
    broker.core.close()


def test_a_client_id_taken_over_by_another_user_starts_anew(broker):
    first = broker.publisher("same", username="u1")
    assert broker.publish(first, "open/1") == ALLOWED
    second = broker.publisher("same", username="intruder")
    assert broker.publish(second, "open/1") == REFUSED
    assert broker.memo_of(second) == {}


def test_cache_limit_evicts_from_the_memo_too(tmp_path):
    broker = Broker(tmp_path, **{"acl.cache.max_size": "2"})
    client = broker.publisher()
    for topic in ("open/1", "open/2", "open/3"):
        assert broker.publish(client, topic) == ALLOWED
    assert sorted(broker.memo_of(client)) == ["open/2", "open/3"]
    broker.core.close()


class Gate(Plugin):
    """A user's plugin ahead of the ACL: refuses open/gated, passes the rest on."""

    name = "gate"

    def on_client_authorize_publish(self, client, message):
        return Error(REFUSED, "gate") if message.topic_name == "open/gated" else NEXT


def test_a_plugin_ahead_of_the_acl_is_always_asked(broker):
    broker.hooks.add(Gate(), position=0)
    client = broker.publisher()
    assert broker.publish(client, "open/gated") == REFUSED
    assert broker.publish(client, "open/1") == ALLOWED
    assert broker.memo_of(client) == {}                     # the ACL is not first: no memo
    assert broker.publish(client, "open/gated") == REFUSED


def test_a_plugin_put_ahead_later_ends_the_memo(broker):
    client = broker.publisher()
    assert broker.publish(client, "open/gated") == ALLOWED
    broker.hooks.add(Gate(), position=0)
    assert broker.publish(client, "open/gated") == REFUSED
    broker.hooks.disable("gate")
    assert broker.publish(client, "open/gated") == ALLOWED
    assert "open/gated" in broker.memo_of(client)
    broker.hooks.disable("acl")
    broker.hooks.enable("gate")
    assert broker.publish(client, "open/gated") == REFUSED
