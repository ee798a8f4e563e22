"""Redis auth / ACL (VerneMQ vmq_diversity records) on a real broker with a real
redis-server, and the mountpoints its register modifiers put clients in: tenants
never see each other's messages or retained messages."""

from __future__ import annotations

import json

import bcrypt
import pytest
import redis

from tests import redisserver
from tests.integration import clients
from actormq.transport.codec import Puback
from tests.integration.brokers import actormq_only, start_broker
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.skipif(not redisserver.available(), reason="redis-server (Debian package) not installed")
HASH = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
EVERYTHING = [{"pattern": "#"}]


def _record(mountpoint: str | None = None, **more) -> str:
    value = {"passhash": HASH, "publish_acl": EVERYTHING, "subscribe_acl": EVERYTHING, **more}
    if mountpoint is not None:
        value["register_modifiers"] = {"mountpoint": mountpoint}
    return json.dumps(value)


@pytest.fixture(scope="module")
def redis_broker(tmp_path_factory):
    actormq_only("Redis auth settings")
    workdir = tmp_path_factory.mktemp("redis")
    with redisserver.redis_server(workdir) as port:
        store = redis.Redis(port=port)
        for client_id, mountpoint in (("a1", "tenant-a/"), ("a2", "tenant-a/"), ("b1", "tenant-b/"),
                                      ("b2", "tenant-b/")):
            store.set(json.dumps(["", client_id, "user"], separators=(",", ":")), _record(mountpoint))
        store.set('["","windowed","user"]', json.dumps({
            "passhash": HASH, "publish_acl": EVERYTHING, "subscribe_acl": EVERYTHING,
            "register_modifiers": {"max_inflight_messages": 2}}))
        store.set('["","feeder","user"]', _record())
        store.set('["","limited","user"]', json.dumps({
            "passhash": HASH, "subscribe_acl": [{"pattern": "say/#", "max_qos": 0}],
            "publish_acl": [{"pattern": "say/%u", "allowed_retain": False}]}))
        broker = start_broker(workdir / "broker", settings={"auth.redis.server": f"127.0.0.1:{port}",
                                                            "mqtt.allow_anonymous": "false",
                                                            "sys_interval": "1"})
        broker.redis = store
        yield broker
        clients.close_all()
        broker.stop()


def _connect(broker, client_id: str, password: str = "pw", **kwargs):
    return clients.connect(broker.port, client_id, username="user", password=password, **kwargs)


def test_redis_auth_codes(redis_broker):
    assert _connect(redis_broker, "a1").connack.reason_code == 0
    assert _connect(redis_broker, "a1", "wrong", check=False).connack.reason_code == 0x86
    assert _connect(redis_broker, "stranger", check=False).connack.reason_code == 0x86   # no record: nobody allowed it


def test_redis_acl_with_vernemq_modifiers(redis_broker):
    limited = clients.connect(redis_broker.port, "limited", username="user", password="pw")
    assert limited.subscribe("say/#", qos=1) == [0]       # max_qos 0
    assert limited.subscribe("other", qos=1) == [0x87]
    assert limited.publish_codes[limited.publish("say/user", b"x", qos=1).mid] == 0
    assert limited.publish_codes[limited.publish("say/user", b"x", qos=1, retain=True).mid] == 0x87
    assert limited.publish_codes[limited.publish("say/other", b"x", qos=1).mid] == 0x87


def test_mountpoints_keep_tenants_apart(redis_broker):
    a1, b1 = _connect(redis_broker, "a1"), _connect(redis_broker, "b1")
    assert a1.subscribe("x/#", qos=1) == [1] and b1.subscribe("x/#", qos=1) == [1]
    a2, b2 = _connect(redis_broker, "a2"), _connect(redis_broker, "b2")
    b2.publish("x/retained", b"b's", qos=1, retain=True)
    b2.publish("x/1", b"for b", qos=1)
    got = b1.expect(2)
    assert [(m.topic, m.payload) for m in got] == [("x/retained", b"b's"), ("x/1", b"for b")]
    a2.publish("x/a-retained", b"a's", qos=1, retain=True)
    only = a1.expect_one()                               # a's own message arrives, b's never did
    assert (only.topic, only.payload) == ("x/a-retained", b"a's")
    a1.expect_none()
    late_a = _connect(redis_broker, "a2")
    late_a.subscribe("x/#")
    assert late_a.expect_one().topic == "x/a-retained"   # b's retained message is not in a's namespace
    late_a.expect_none()
    late_b = _connect(redis_broker, "b2")
    late_b.subscribe("x/#")
    assert late_b.expect_one().topic == "x/retained"


def test_sys_topics_are_not_mounted(redis_broker):
    a1 = _connect(redis_broker, "a1")
    assert a1.subscribe("$SYS/#") == [0]
    assert a1.expect_one(timeout=5).topic.startswith("$SYS/")


def test_register_modifiers_apply_to_the_client(redis_broker):
    raw = RawClient(redis_broker.port)
    raw.connect("windowed", username="user", password=b"pw")      # max_inflight_messages 2
    assert raw.subscribe("win/#", qos=1).reason_codes == (1,)
    feeder = _connect(redis_broker, "feeder")
    for number in range(4):
        feeder.publish(f"win/{number}", b"", qos=1)
    first, second = raw.expect_publishes(2)
    raw.expect_nothing(0.5)                                       # the window is full
    raw.send(Puback(first.packet_id))
    (third,) = raw.expect_publishes(1)                            # one acknowledged, one more sent
    assert [p.topic_name for p in (first, second, third)] == ["win/0", "win/1", "win/2"]
