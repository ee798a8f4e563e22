"""Redis auth and ACL providers against a real redis-server started on a free
loopback port, with VerneMQ vmq_diversity records written as VerneMQ users have them."""

from __future__ import annotations

import asyncio
import json
import time

import bcrypt
import pytest
import redis

from actormq.actors.messages import Message, SubOptions
from actormq.auth.provider_acl import AclPlugin
from actormq.auth.provider_redis import RedisAuthPlugin
from actormq.hooks import ClientInfo
from tests import redisserver
from tests.unit.authhooks import decide, make_hooks

pytestmark = pytest.mark.skipif(not redisserver.available(), reason="redis-server (Debian package) not installed")

CLIENT = ClientInfo(client_id="1528361231", username="101", password=b"pw101", peer_host="127.0.0.1")


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    with redisserver.redis_server(tmp_path_factory.mktemp("redis"), password="sesame") as port:
        store = redis.Redis(port=port, password="sesame")
        store.set('["","1528361231","101"]', json.dumps({
            "passhash": bcrypt.hashpw(b"pw101", bcrypt.gensalt(rounds=4)).decode(),
            "subscribe_acl": [{"pattern": "say/#", "max_qos": 1}],
            "publish_acl": [{"pattern": "say/%u", "allowed_retain": False}],
            "register_modifiers": {"max_inflight_messages": 5, "mountpoint": "tenant1", "bogus": 1},
        }))
        store.set('["","admin","root"]', json.dumps({"passhash": bcrypt.hashpw(b"r", bcrypt.gensalt(4)).decode(),
                                                     "superuser": True}))
        store.set('["","broken","x"]', "not json")
        yield port


def _hooks(port, *classes, **more):
    return make_hooks(*classes, **{"auth.redis.server": f"127.0.0.1:{port}", "auth.redis.password": "sesame",
                                   "auth.redis.timeout": "1s", **more})


def test_redis_auth(redis_port):
    async def scenario():
        hooks = _hooks(redis_port, RedisAuthPlugin)
        await hooks.start()
        chain = hooks.client_authenticate
        good = await decide(chain, CLIENT)
        wrong = await decide(chain, CLIENT.evolve(password=b"nope"))
        unknown = await decide(chain, CLIENT.evolve(client_id="other"))
        broken = await decide(chain, CLIENT.evolve(client_id="broken", username="x"))
        root = await decide(chain, CLIENT.evolve(client_id="admin", username="root", password=b"r"))
        await hooks.stop()
        return good, wrong, unknown, broken, root

    good, wrong, unknown, broken, root = asyncio.run(scenario())
    assert good.allowed and dict(good.modifiers) == {"max_inflight_messages": 5, "mountpoint": "tenant1"}
    assert (wrong.allowed, wrong.reason_code) == (False, 0x86)
    assert (unknown.allowed, unknown.decided_by) == (False, "default")
    assert (broken.allowed, broken.decided_by) == (False, "default")
    assert root.modifiers == {"superuser": True}


def test_redis_acl(redis_port):
    async def scenario():
        hooks = _hooks(redis_port, AclPlugin)
        await hooks.start()
        sub, pub = hooks.client_authorize_subscribe, hooks.client_authorize_publish
        results = [
            await decide(sub, CLIENT, "say/hello", SubOptions(qos=2)),
            await decide(sub, CLIENT, "other", SubOptions()),
            await decide(pub, CLIENT, Message("say/101", b"x")),
            await decide(pub, CLIENT, Message("say/101", b"x", retain=True)),
            await decide(pub, CLIENT, Message("say/102", b"x")),
            await decide(pub, CLIENT.evolve(client_id="nobody"), Message("any", b"x")),  # not Redis's: nomatch
        ]
        await hooks.stop()
        return results

    granted, other, own, retained, foreign, nomatch = asyncio.run(scenario())
    assert granted.allowed and granted.modifiers == {"qos": 1}
    assert not other.allowed and other.reason_code == 0x87
    assert own.allowed and not retained.allowed and not foreign.allowed
    assert nomatch.allowed


def test_redis_down_fails_closed_within_the_timeout(tmp_path):
    with redisserver.redis_server(tmp_path) as port:
        pass  # started and stopped: nothing listens there now

    async def scenario():
        hooks = _hooks(port, RedisAuthPlugin, AclPlugin, **{"auth.redis.password": ""})
        await hooks.start()
        started = time.monotonic()
        auth = await decide(hooks.client_authenticate, CLIENT)
        acl = await decide(hooks.client_authorize_publish, CLIENT, Message("say/101", b""))
        elapsed = time.monotonic() - started
        await hooks.stop()
        return auth, acl, elapsed

    auth, acl, elapsed = asyncio.run(scenario())
    assert (auth.allowed, auth.reason_code) == (False, 0x88)
    assert not acl.allowed
    assert elapsed < 2.5
