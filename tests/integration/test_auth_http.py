"""HTTP auth and ACL (EMQX 4 emqx_auth_http) on a real broker against a real
aiohttp server in a thread on loopback: status codes to CONNACK codes, the
superuser request, ACL with its cache, and an endpoint that is slow or down."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from aiohttp import web

from tests.integration import clients
from tests.integration.brokers import _free_port, actormq_only, start_broker

STATUS_BY_USER = {"bad": 401, "banned": 403, "busy": 429, "down": 503}


class Endpoint:
    """An aiohttp server on a free loopback port, run by its own loop in a thread."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._serve, daemon=True).start()
        assert self._ready.wait(10)

    async def _handle(self, request):
        form = dict(await request.post())
        self.requests.append((request.path, form))
        user = form.get("username", "")
        if user == "slow":
            await asyncio.sleep(4)
        if request.path == "/auth":
            return web.Response(status=STATUS_BY_USER.get(user, 200))
        if request.path == "/super":
            return web.Response(status=200 if user == "root" else 403)
        return web.Response(status=200 if form["topic"].startswith(f"{user}/") else 403)

    def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/{path}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self.runner.setup())
        self._loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", 0).start())
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        self._ready.set()
        self._loop.run_forever()

    def acl_requests(self, topic: str) -> int:
        return sum(1 for path, form in self.requests if path == "/acl" and form.get("topic") == topic)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture(scope="module")
def endpoint():
    server = Endpoint()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http_broker(endpoint, tmp_path_factory):
    actormq_only("HTTP auth settings")
    broker = start_broker(tmp_path_factory.mktemp("http"), settings={
        "auth.http.auth_req.url": endpoint.base + "/auth",
        "auth.http.super_req.url": endpoint.base + "/super",
        "auth.http.acl_req.url": endpoint.base + "/acl",
        "auth.http.timeout": "2s", "auth.http.retry.interval": "1s",
        "mqtt.allow_anonymous": "false"})
    yield broker
    clients.close_all()
    broker.stop()


@pytest.mark.parametrize("version", [4, 5])
def test_status_codes_become_connack_codes(http_broker, endpoint, version):
    expected = {5: {"alice": 0, "bad": 0x86, "banned": 0x87, "busy": 0x97, "down": 0x88},
                4: {"alice": 0, "bad": 4, "banned": 5, "busy": 3, "down": 3}}[version]
    got = {user: clients.connect(http_broker.port, clients.unique(user), version=version, username=user,
                                 password="pw", check=False).connack.reason_code for user in expected}
    assert got == expected
    client_id = clients.unique("form")
    clients.connect(http_broker.port, client_id, username="alice", password="p w&x")
    assert ("/auth", {"clientid": client_id, "username": "alice", "password": "p w&x"}) in endpoint.requests


def test_superuser_skips_acl_and_acl_is_cached(http_broker, endpoint):
    root = clients.connect(http_broker.port, clients.unique(), username="root", password="pw")
    assert root.subscribe("anything/#") == [0]
    alice = clients.connect(http_broker.port, clients.unique(), username="alice", password="pw")
    assert alice.subscribe("alice/a") == [0]
    assert alice.subscribe("bob/a") == [0x87]
    assert alice.subscribe("alice/a") == [0]
    assert endpoint.acl_requests("alice/a") == 1     # the second answer came from the ACL cache
    assert endpoint.acl_requests("anything/#") == 0  # the superuser was never asked about


def test_slow_endpoint_fails_closed_and_others_go_on(http_broker):
    watcher = clients.connect(http_broker.port, clients.unique(), username="alice", password="pw")
    assert watcher.subscribe("alice/ping") == [0]
    result: dict = {}

    def slow_connect():
        started = time.monotonic()
        client = clients.connect(http_broker.port, clients.unique("slow"), username="slow", password="pw",
                                 check=False, timeout=10)
        result.update(code=client.connack.reason_code, seconds=time.monotonic() - started)

    thread = threading.Thread(target=slow_connect)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    other = clients.connect(http_broker.port, clients.unique(), username="alice", password="pw")
    other.publish("alice/ping", b"1")
    watcher.expect_one()
    others_took = time.monotonic() - started
    thread.join(15)
    assert result["code"] == 0x88                    # server unavailable, not "bad password"
    assert 1.5 < result["seconds"] < 3.5             # within auth.http.timeout (2s)
    assert others_took < 1.5


def test_endpoint_down_fails_closed(tmp_path):
    actormq_only("HTTP auth settings")
    broker = start_broker(tmp_path, settings={"auth.http.auth_req.url": f"http://127.0.0.1:{_free_port()}/auth",
                                              "auth.http.timeout": "1s", "auth.http.retry.interval": "0"})
    try:
        refused = clients.connect(broker.port, clients.unique(), username="u", password="p", check=False)
        assert refused.connack.reason_code == 0x88
    finally:
        clients.close_all()
        broker.stop()
