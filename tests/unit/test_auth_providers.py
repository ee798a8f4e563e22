"""The auth and ACL providers on a real hook chain (`actormq.hooks.Hooks`):
password file, ACL file with cache and reload, HTTP auth / ACL against a real
aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import time

import bcrypt
import pytest
from aiohttp import web

from actormq.actors.messages import Message, SubOptions
from actormq.auth.hashes import make_pbkdf2_hash
from actormq.auth.provider_acl import AclPlugin
from actormq.auth.provider_file import PasswordFilePlugin
from actormq.auth.provider_http import HttpAuthPlugin
from actormq.errors import ConfigError
from actormq.hooks import NEXT, ClientInfo, Error, Plugin
from tests.unit.authhooks import decide, make_hooks

ALICE = ClientInfo(client_id="c-alice", username="alice", password=b"wonder", peer_host="127.0.0.1",
                   peer_port=5555)


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "passwd"
    bcrypted = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"alice:{make_pbkdf2_hash('wonder', iterations=2)}\nroot:{make_pbkdf2_hash('toor')}:superuser\n"
                    f"bob:{bcrypted}\n")
    return str(path)


def test_password_file_answers(password_file):
    async def scenario():
        hooks = make_hooks(PasswordFilePlugin, **{"auth.password_file": password_file})
        await hooks.start()
        chain = hooks.client_authenticate
        assert (await decide(chain, ALICE)).allowed
        wrong = await decide(chain, ALICE.evolve(password=b"nope"))
        assert (wrong.allowed, wrong.reason_code) == (False, 0x86)
        assert (await decide(chain, ALICE.evolve(username="root", password=b"toor"))).modifiers == {"superuser": True}
        assert (await decide(chain, ALICE.evolve(username="bob", password=b"secret"))).allowed
        assert (await decide(chain, ALICE.evolve(username="bob", password=b"Secret"))).reason_code == 0x86
        unknown = await decide(chain, ALICE.evolve(username="carol"))
        assert (unknown.allowed, unknown.decided_by) == (False, "default")
        assert (await decide(chain, ALICE.evolve(username=None, password=None))).allowed  # anonymous on

    run(scenario())


def test_password_file_that_cannot_be_read_stops_the_start(tmp_path):
    hooks = make_hooks(PasswordFilePlugin, **{"auth.password_file": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="cannot read the password file"):
        run(hooks.start())


def _acl_hooks(path, **settings):
    return make_hooks(AclPlugin, **{"acl.file": str(path), **settings})


def test_acl_file_cache_reload_superuser(tmp_path):
    path = tmp_path / "acl.conf"
    path.write_text('{allow, {user, "alice"}, subscribe, ["a/#"]}.\n{deny, all, subscribe, ["#"]}.\n')

    async def scenario():
        hooks = _acl_hooks(path)
        await hooks.start()
        sub = hooks.client_authorize_subscribe
        assert (await decide(sub, ALICE, "a/b", SubOptions(qos=1))).allowed
        denied = await decide(sub, ALICE, "b/c", SubOptions())
        assert (denied.allowed, denied.reason_code) == (False, 0x87)
        assert (await decide(sub, ALICE.evolve(superuser=True), "b/c", SubOptions())).allowed
        path.write_text('{deny, all}.\n')
        assert (await decide(sub, ALICE, "a/b", SubOptions())).allowed  # cached for the TTL
        plugin = hooks.get("acl").plugin
        assert [entry["topic"] for entry in plugin.cache_of("c-alice")] == ["a/b", "b/c"]
        plugin.reload()  # SIGHUP / actormq acl reload
        assert not (await decide(sub, ALICE, "a/b", SubOptions())).allowed
        publish = await decide(hooks.client_authorize_publish, ALICE, Message("x", b""))
        assert not publish.allowed
        assert plugin.clear_cache("c-alice") and plugin.cache_of("c-alice") == []

    run(scenario())


def test_acl_nomatch_and_no_cache(tmp_path):
    path = tmp_path / "acl.conf"
    path.write_text('{allow, all, publish, ["open/#"]}.\n')

    async def scenario():
        hooks = _acl_hooks(path, **{"acl.nomatch": "deny", "acl.cache.enable": False})
        await hooks.start()
        chain = hooks.client_authorize_publish
        assert (await decide(chain, ALICE, Message("open/x", b""))).allowed
        assert not (await decide(chain, ALICE, Message("closed", b""))).allowed
        path.write_text('{allow, all}.\n')
        hooks.get("acl").plugin.reload()
        assert (await decide(chain, ALICE, Message("closed", b""))).allowed

    run(scenario())


def test_bad_acl_file_stops_the_start(tmp_path):
    path = tmp_path / "acl.conf"
    path.write_text("{allow, all}.\n{nope}.\n")
    with pytest.raises(ConfigError, match="acl.conf:2"):
        run(_acl_hooks(path, **{"acl.format": "emqx"}).start())


# -- HTTP ------------------------------------------------------------------------------

class Endpoint:
    """A real aiohttp server: answers auth by username, ACL by topic, counts requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.delay = 0.0

    async def handle(self, request):
        form = dict(await request.post()) if request.method == "POST" else dict(request.query)
        self.requests.append((request.path, form))
        await asyncio.sleep(self.delay)
        if request.path == "/auth":
            status = {"alice": 200, "bad": 401, "banned": 403, "busy": 429, "down": 503}.get(form["username"], 200)
            return web.Response(status=status, text="ignore" if form["username"] == "ignored" else "")
        if request.path == "/super":
            return web.Response(status=200 if form["username"] == "root" else 403)
        if request.path == "/acl":
            if form["topic"].startswith("skip/"):
                return web.Response(text="ignore")
            return web.Response(status=200 if form["topic"].startswith(form["username"] + "/") else 403)
        return web.Response(status=404)

    async def __aenter__(self):
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


def _http_settings(base: str, **more) -> dict:
    return {"auth.http.auth_req.url": base + "/auth", "auth.http.super_req.url": base + "/super",
            "auth.http.acl_req.url": base + "/acl", "auth.http.timeout": "1s",
            "auth.http.retry.interval": "0", **more}


def test_http_auth_status_mapping_and_superuser():
    async def scenario():
        async with Endpoint() as endpoint:
            hooks = make_hooks(HttpAuthPlugin, **_http_settings(endpoint.base))
            await hooks.start()
            chain = hooks.client_authenticate
            answers = {}
            for user in ("alice", "bad", "banned", "busy", "down", "root", "ignored"):
                decision = await decide(chain, ALICE.evolve(username=user))
                answers[user] = (decision.allowed, decision.reason_code, dict(decision.modifiers))
            await hooks.stop()
        assert answers == {"alice": (True, 0, {}), "bad": (False, 0x86, {}), "banned": (False, 0x87, {}),
                           "busy": (False, 0x97, {}), "down": (False, 0x88, {}),
                           "root": (True, 0, {"superuser": True}), "ignored": (False, 0x86, {})}
        assert endpoint.requests[0] == ("/auth", {"clientid": "c-alice", "username": "alice",
                                                  "password": "wonder"})

    run(scenario())


def test_http_auth_fails_closed_within_the_timeout():
    async def scenario():
        async with Endpoint() as endpoint:
            endpoint.delay = 3.0
            hooks = make_hooks(HttpAuthPlugin, **_http_settings(endpoint.base))
            await hooks.start()
            started = time.monotonic()
            slow = await decide(hooks.client_authenticate, ALICE)
            elapsed = time.monotonic() - started
            await hooks.stop()
        assert (slow.allowed, slow.reason_code) == (False, 0x88)
        assert 0.9 < elapsed < 1.5
        hooks = make_hooks(HttpAuthPlugin, **_http_settings(endpoint.base))  # server gone: refused
        await hooks.start()
        down = await decide(hooks.client_authenticate, ALICE)
        await hooks.stop()
        assert (down.allowed, down.reason_code) == (False, 0x88)

    run(scenario())


def test_http_acl_with_cache_then_file_then_nomatch(tmp_path):
    path = tmp_path / "acl.conf"
    path.write_text('{deny, all, publish, ["skip/secret"]}.\n')

    async def scenario():
        async with Endpoint() as endpoint:
            hooks = _acl_hooks(path, **_http_settings(endpoint.base, **{"auth.http.acl_req.method": "get"}))
            await hooks.start()
            chain = hooks.client_authorize_publish
            assert (await decide(chain, ALICE, Message("alice/x", b""))).allowed
            assert (await decide(chain, ALICE, Message("alice/x", b""))).allowed
            assert len(endpoint.requests) == 1  # the second came from the cache
            assert endpoint.requests[0][1] == {"access": "2", "username": "alice", "clientid": "c-alice",
                                               "ipaddr": "127.0.0.1", "topic": "alice/x", "mountpoint": ""}
            assert not (await decide(chain, ALICE, Message("bob/x", b""))).allowed
            assert not (await decide(chain, ALICE, Message("skip/secret", b""))).allowed  # ignore -> file
            assert (await decide(chain, ALICE, Message("skip/other", b""))).allowed  # ignore -> nomatch
            await hooks.stop()

    run(scenario())


@pytest.mark.parametrize("policy,allowed", [("deny", False), ("ignore", True)])
def test_http_acl_failure_policy(policy, allowed):
    async def scenario():
        async with Endpoint() as endpoint:
            base = endpoint.base
        hooks = make_hooks(AclPlugin, **_http_settings(base, **{"auth.http.acl_req.failure_policy": policy}))
        await hooks.start()
        started = time.monotonic()
        decision = await decide(hooks.client_authorize_publish, ALICE, Message("alice/x", b""))
        await hooks.stop()
        return decision, time.monotonic() - started

    decision, elapsed = run(scenario())
    assert decision.allowed is allowed  # ignore: acl.nomatch (allow) has the last word
    assert elapsed < 1.5


class Gate(Plugin):
    """A user's plugin named first in plugins.order: it has the first word."""

    name = "gate"

    def on_client_authorize_publish(self, client, message):
        return Error(0x87, "gate says no") if message.topic_name == "blocked" else NEXT


def test_a_users_plugin_runs_before_the_acl_sources(tmp_path):
    path = tmp_path / "acl.conf"
    path.write_text('{deny, all, publish, ["denied"]}.\n')

    async def scenario():
        hooks = make_hooks(Gate, AclPlugin, **{"acl.file": str(path), "acl.nomatch": "allow"})
        await hooks.start()
        chain = hooks.client_authorize_publish
        return [await decide(chain, ALICE, Message(topic, b"")) for topic in ("blocked", "denied", "free")]

    blocked, denied, free = run(scenario())
    assert (blocked.allowed, blocked.decided_by) == (False, "gate")
    assert (denied.allowed, denied.decided_by) == (False, "acl")
    assert (free.allowed, free.decided_by) == (True, "acl")    # acl.nomatch has the last word
