"""ACL reload and ACL cache on a real broker: SIGHUP and `actormq acl reload`
empty every cache and re-read the ACL file; `GET/DELETE
/api/v4/clients/{clientid}/acl_cache` (the management API's routes, answered by
the ACL provider's admin commands) show and empty one client's cache."""

from __future__ import annotations

import signal
import time

import pytest

from tests.integration import clients
from tests.integration.brokers import actormq_only, start_broker
from tests.integration.mgmtapi import call, cli

ALLOW_A = '{allow, all, subscribe, ["a/#"]}.\n{deny, all}.\n'
ALLOW_B = '{allow, all, subscribe, ["b/#"]}.\n{deny, all}.\n'


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory):
    actormq_only("ACL settings and the management API")
    workdir = tmp_path_factory.mktemp("acl")
    acl = workdir / "acl.conf"
    acl.write_text(ALLOW_A)
    broker = start_broker(workdir / "broker", settings={"acl.file": str(acl), "acl.cache.ttl": "1h"})
    broker.acl = acl
    yield broker
    clients.close_all()
    broker.stop()


def _until(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _reloads(broker, how: str) -> None:
    if how == "sighup":
        before = broker.log().count("reloaded:")
        broker.proc.send_signal(signal.SIGHUP)
        assert _until(lambda: broker.log().count("reloaded:") > before), broker.log()
    else:
        result = cli(broker, "acl", "reload")
        assert result.returncode == 0, result.stderr
        assert "reloaded on 1 worker(s)" in result.stdout


@pytest.mark.parametrize("how", ["sighup", "cli"])
def test_reload_rereads_the_file_and_empties_the_caches(acl_broker, how):
    acl_broker.acl.write_text(ALLOW_A)
    _reloads(acl_broker, how)
    client = clients.connect(acl_broker.port, clients.unique())
    assert client.subscribe("a/1") == [0]
    acl_broker.acl.write_text(ALLOW_B)
    assert client.subscribe("a/1") == [0]      # cached: the file is not read until a reload
    _reloads(acl_broker, how)
    assert client.subscribe("a/1") == [0x87]
    assert client.subscribe("b/1") == [0]


def test_acl_cache_api(acl_broker):
    acl_broker.acl.write_text(ALLOW_A)
    _reloads(acl_broker, "cli")
    client_id = clients.unique("cached")
    client = clients.connect(acl_broker.port, client_id)
    assert client.subscribe("a/x") == [0] and client.subscribe("z") == [0x87]
    status, body = call(acl_broker, "GET", f"/api/v4/clients/{client_id}/acl_cache")
    assert status == 200 and body["code"] == 0
    assert {e["node"] for e in body["data"]} == {"actormq@127.0.0.1"}
    assert sorted((e["access"], e["topic"], e["result"]) for e in body["data"]) == \
        [("subscribe", "a/x", "allow"), ("subscribe", "z", "deny")]
    assert all(isinstance(e["updated_time"], int) for e in body["data"])
    status, body = call(acl_broker, "DELETE", f"/api/v4/clients/{client_id}/acl_cache")
    assert (status, body) == (200, {"code": 0})
    assert call(acl_broker, "GET", f"/api/v4/clients/{client_id}/acl_cache")[1]["data"] == []
    assert call(acl_broker, "GET", "/api/v4/clients/nobody-here/acl_cache")[1] == {"code": 0, "data": []}
    shown = cli(acl_broker, "acl", "cache", client_id, "--format", "json")
    assert shown.returncode == 0 and shown.stdout.strip() == "[]"
