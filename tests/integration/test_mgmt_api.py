"""The management HTTP API against a real broker (two workers), written from
EMQX 4's documented requests and answers: paging and filters of /clients,
kick with DISCONNECT 0x98, subscriptions and routes, HTTP publish reaching a
paho subscriber, subscribe/unsubscribe for a client, banned clients refused at
CONNECT, retained list/delete, brokers/nodes/stats/metrics/listeners/plugins,
ACL cache (empty without an ACL cache provider)."""

from __future__ import annotations

import time

import pytest

from tests.integration.clients import connect, unique
from tests.integration.mgmtapi import call, get, module_broker

NODE = "actormq@127.0.0.1"


@pytest.fixture(scope="module")
def api_broker(tmp_path_factory):
    yield from module_broker(tmp_path_factory, "api")


def _wait(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_clients_paging_and_emqx_fields(api_broker):
    prefix = unique("page")
    for index in range(5):
        connect(api_broker.port, f"{prefix}-{index}", version=4, username=f"user-{index % 2}")
    body = get(api_broker, "/api/v4/clients", _page=1, _limit=2, _like_clientid=prefix)
    assert [c["clientid"] for c in body["data"]] == [f"{prefix}-0", f"{prefix}-1"]
    assert body["meta"] == {"page": 1, "limit": 2, "count": -1, "hasnext": True}   # filtered: -1
    last = get(api_broker, "/api/v4/clients", _page=3, _limit=2, _like_clientid=prefix)
    assert [c["clientid"] for c in last["data"]] == [f"{prefix}-4"] and last["meta"]["hasnext"] is False
    client = body["data"][0]
    assert client["node"] == NODE and client["worker"] in (0, 1)
    assert client["connected"] is True and client["proto_ver"] == 4 and client["proto_name"] == "MQTT"
    assert client["ip_address"] == "127.0.0.1" and client["port"] > 0 and client["keepalive"] == 60
    assert client["username"] == "user-0" and client["clean_start"] is True
    everything = get(api_broker, "/api/v4/clients")
    assert everything["meta"]["count"] == len(everything["data"]) >= 5


def test_clients_filters(api_broker):
    prefix = unique("filter")
    connect(api_broker.port, f"{prefix}-a", version=4, username="alice")
    connect(api_broker.port, f"{prefix}-b", version=5, username="bob")
    by_user = get(api_broker, "/api/v4/clients", username="alice", _like_clientid=prefix)["data"]
    assert [c["clientid"] for c in by_user] == [f"{prefix}-a"]
    by_version = get(api_broker, "/api/v4/clients", proto_ver=5, like_clientid=prefix)["data"]
    assert [c["clientid"] for c in by_version] == [f"{prefix}-b"]
    exact = get(api_broker, "/api/v4/clients", clientid=f"{prefix}-b", ip_address="127.0.0.1",
                conn_state="connected")["data"]
    assert [c["clientid"] for c in exact] == [f"{prefix}-b"]
    assert get(api_broker, "/api/v4/clients", clientid=f"{prefix}-b", ip_address="10.9.9.9")["data"] == []
    one = get(api_broker, f"/api/v4/clients/{prefix}-a")["data"]
    assert [c["username"] for c in one] == ["alice"]
    assert get(api_broker, f"/api/v4/nodes/{NODE}/clients/{prefix}-a")["data"] == one
    assert call(api_broker, "GET", f"/api/v4/nodes/other@host/clients/{prefix}-a")[0] == 404
    assert [c["clientid"] for c in get(api_broker, "/api/v4/clients/username/bob")["data"]] == [f"{prefix}-b"]


def test_bad_paging_parameter_is_a_400(api_broker):
    status, body = call(api_broker, "GET", "/api/v4/clients", params={"_limit": "ten"})
    assert status == 400 and body["code"] == 108 and "_limit" in body["message"]


def test_kick_sends_disconnect_0x98_and_ends_the_session(api_broker):
    client_id = unique("kick")
    victim = connect(api_broker.port, client_id, version=5)
    status, body = call(api_broker, "DELETE", f"/api/v4/clients/{client_id}")
    assert (status, body) == (200, {"code": 0})
    assert victim.wait_closed()
    assert victim.disconnect_reason == 0x98
    assert get(api_broker, f"/api/v4/clients/{client_id}")["data"] == []
    status, body = call(api_broker, "DELETE", f"/api/v4/clients/{client_id}")
    assert status == 404 and body["code"] == 112


def test_subscriptions_and_routes(api_broker):
    client_id = unique("subs")
    topic = unique("sub/topic")
    subscriber = connect(api_broker.port, client_id)
    subscriber.subscribe(f"{topic}/+", qos=1)
    subscriber.subscribe(f"{topic}/x", qos=0)
    rows = get(api_broker, f"/api/v4/subscriptions/{client_id}")["data"]
    assert rows == [{"node": NODE, "clientid": client_id, "topic": f"{topic}/+", "qos": 1},
                    {"node": NODE, "clientid": client_id, "topic": f"{topic}/x", "qos": 0}]
    filtered = get(api_broker, "/api/v4/subscriptions", clientid=client_id, qos=1)
    assert [r["topic"] for r in filtered["data"]] == [f"{topic}/+"] and filtered["meta"]["count"] == -1
    matching = get(api_broker, "/api/v4/subscriptions", _match_topic=f"{topic}/x")["data"]
    assert sorted(r["topic"] for r in matching) == [f"{topic}/+", f"{topic}/x"]
    routes = get(api_broker, "/api/v4/routes")["data"]
    assert {"topic": f"{topic}/x", "node": NODE} in routes
    one = get(api_broker, "/api/v4/routes/" + f"{topic}/x".replace("/", "%2F"))["data"]
    assert one == [{"topic": f"{topic}/x", "node": NODE}]


def test_http_publish_reaches_a_paho_subscriber(api_broker):
    topic = unique("http/pub")
    subscriber = connect(api_broker.port, unique("reader"))
    subscriber.subscribe(f"{topic}/#", qos=1)
    status, body = call(api_broker, "POST", "/api/v4/mqtt/publish",
                        body={"topic": f"{topic}/a", "payload": "Hello World", "qos": 1, "retain": False,
                              "clientid": "example"})
    assert (status, body) == (200, {"code": 0})
    message = subscriber.expect_one()
    assert (message.topic, message.payload, message.qos) == (f"{topic}/a", b"Hello World", 1)
    status, body = call(api_broker, "POST", "/api/v4/mqtt/publish_batch", body=[
        {"topic": f"{topic}/b", "payload": "SGk=", "encoding": "base64", "clientid": "example"},
        {"topics": f"{topic}/c,{topic}/d", "payload": "again", "qos": 0, "clientid": "example"}])
    assert status == 200 and body["code"] == 0
    assert [r["topic"] for r in body["data"]] == [f"{topic}/b", f"{topic}/c", f"{topic}/d"]
    got = sorted((m.topic, m.payload) for m in subscriber.expect(3))
    assert got == [(f"{topic}/b", b"Hi"), (f"{topic}/c", b"again"), (f"{topic}/d", b"again")]


def test_publish_with_bad_topic_or_body(api_broker):
    status, body = call(api_broker, "POST", "/api/v4/mqtt/publish", body={"topic": "a/+", "payload": "x"})
    assert status == 400 and body["code"] == 115
    status, body = call(api_broker, "POST", "/api/v4/mqtt/publish", body={"payload": "x"})
    assert status == 400 and body["code"] == 107
    status, body = call(api_broker, "POST", "/api/v4/mqtt/publish", body={"topic": "t", "qos": 3})
    assert status == 400 and body["code"] == 108


def test_subscribe_and_unsubscribe_a_client_over_http(api_broker):
    client_id = unique("remote")
    topic = unique("remote/t")
    target = connect(api_broker.port, client_id)
    status, body = call(api_broker, "POST", "/api/v4/mqtt/subscribe",
                        body={"topics": f"{topic}/a,{topic}/b", "qos": 1, "clientid": client_id})
    assert (status, body) == (200, {"code": 0})
    call(api_broker, "POST", "/api/v4/mqtt/publish", body={"topic": f"{topic}/a", "payload": "one",
                                                         "qos": 1})
    assert target.expect_one().payload == b"one"
    status, body = call(api_broker, "POST", "/api/v4/mqtt/unsubscribe",
                        body={"topic": f"{topic}/a", "clientid": client_id})
    assert (status, body) == (200, {"code": 0})
    call(api_broker, "POST", "/api/v4/mqtt/publish", body={"topic": f"{topic}/a", "payload": "gone"})
    call(api_broker, "POST", "/api/v4/mqtt/publish", body={"topic": f"{topic}/b", "payload": "two"})
    assert target.expect_one().payload == b"two"      # b still subscribed; a's message never came
    status, body = call(api_broker, "POST", "/api/v4/mqtt/subscribe",
                        body={"topic": "x", "clientid": unique("nobody")})
    assert status == 404 and body["code"] == 112


def test_banned_client_is_refused_until_the_ban_is_deleted(api_broker):
    client_id = unique("banned")
    status, body = call(api_broker, "POST", "/api/v4/banned", body={"who": client_id, "as": "clientid"})
    assert status == 200 and body["code"] == 0
    assert body["data"]["who"] == client_id and body["data"]["as"] == "clientid"
    assert body["data"]["until"] - body["data"]["at"] == 300          # EMQX: five minutes by default
    listed = get(api_broker, "/api/v4/banned")["data"]
    assert any(row["who"] == client_id for row in listed)
    for version, code in ((5, 0x8A), (4, 5)):
        refused = connect(api_broker.port, client_id, version=version, check=False)
        assert refused.connack.reason_code == code
    assert call(api_broker, "DELETE", f"/api/v4/banned/clientid/{client_id}") == (200, {"code": 0})
    connect(api_broker.port, client_id)         # accepted again


def test_ban_by_username_and_peerhost_with_expiry(api_broker):
    now = int(time.time())
    call(api_broker, "POST", "/api/v4/banned", body={"who": "mallory", "as": "username",
                                                     "at": now, "until": now + 2})
    refused = connect(api_broker.port, unique("m"), version=5, username="mallory", check=False)
    assert refused.connack.reason_code == 0x8A
    time.sleep(2.2)
    connect(api_broker.port, unique("m"), version=5, username="mallory")        # the ban expired
    assert all(row["who"] != "mallory" for row in get(api_broker, "/api/v4/banned")["data"])
    call(api_broker, "POST", "/api/v4/banned", body={"who": "127.0.0.1", "as": "peerhost"})
    try:
        refused = connect(api_broker.port, unique("p"), version=4, check=False)
        assert refused.connack.reason_code == 5
    finally:
        call(api_broker, "DELETE", "/api/v4/banned/peerhost/127.0.0.1")
    status, body = call(api_broker, "POST", "/api/v4/banned", body={"who": "x", "as": "ipaddr"})
    assert status == 400 and body["code"] == 108


def test_retained_list_and_delete(api_broker):
    topic = unique("keep")
    publisher = connect(api_broker.port, unique("retainer"))
    for name in ("a", "b", "c"):
        publisher.wait_published(publisher.publish(f"{topic}/{name}", name.encode(), qos=1, retain=True))
    body = get(api_broker, "/api/v4/retained", topic=f"{topic}/#", _limit=2)
    assert [row["topic"] for row in body["data"]] == [f"{topic}/a", f"{topic}/b"]
    assert body["meta"]["hasnext"] is True and body["data"][0]["payload"] == "a"
    path = "/api/v4/retained/" + f"{topic}/b".replace("/", "%2F")
    assert call(api_broker, "DELETE", path) == (200, {"code": 0})
    rows = get(api_broker, "/api/v4/retained", topic=f"{topic}/#")["data"]
    assert [row["topic"] for row in rows] == [f"{topic}/a", f"{topic}/c"]
    late = connect(api_broker.port, unique("late"))
    late.subscribe(f"{topic}/#")
    assert sorted(m.topic for m in late.expect(2)) == [f"{topic}/a", f"{topic}/c"]
    status, body = call(api_broker, "DELETE", path)
    assert status == 404


def test_brokers_nodes_stats_metrics(api_broker):
    brokers = get(api_broker, "/api/v4/brokers")["data"]
    assert brokers[0]["node"] == NODE and brokers[0]["node_status"] == "Running"
    assert set(brokers[0]) >= {"version", "uptime", "sysdescr", "otp_release", "datetime"}
    one = get(api_broker, f"/api/v4/brokers/{NODE}")["data"]
    assert one["node"] == NODE
    assert call(api_broker, "GET", "/api/v4/brokers/nobody@nowhere")[0] == 404
    node = get(api_broker, "/api/v4/nodes")["data"][0]
    assert node["process_used"] == 2 and node["connections"] >= 0
    connect(api_broker.port, unique("stats"))
    stats = get(api_broker, "/api/v4/stats")["data"][0]
    assert stats["node"] == NODE and stats["stats"]["connections.count"] >= 1
    assert stats["stats"]["connections.max"] >= stats["stats"]["connections.count"]
    metrics = get(api_broker, "/api/v4/metrics")["data"][0]["metrics"]
    assert metrics["client.connect"] >= 1 and "bytes.received" in metrics


def test_listeners_and_plugins(api_broker):
    listeners = get(api_broker, "/api/v4/listeners")["data"][0]["listeners"]
    mqtt = next(row for row in listeners if row["protocol"] == "mqtt:tcp")
    assert mqtt["listen_on"].endswith(f":{api_broker.port}") and mqtt["running"] is True
    assert mqtt["acceptors"] == 2
    assert any(row["protocol"] == "http:management" for row in listeners)
    plugins = get(api_broker, "/api/v4/plugins")["data"]
    assert plugins[0]["node"] == NODE and isinstance(plugins[0]["plugins"], list)


def test_acl_cache_routes_answer_empty_without_a_cache(api_broker):
    client_id = unique("acl")
    connect(api_broker.port, client_id)
    assert get(api_broker, f"/api/v4/clients/{client_id}/acl_cache")["data"] == []
    assert call(api_broker, "DELETE", f"/api/v4/clients/{client_id}/acl_cache") == (200, {"code": 0})


def test_api_lists_its_routes(api_broker):
    paths = {(row["path"], row["method"]) for row in get(api_broker, "/api/v4")["data"]}
    assert ("/api/v4/clients", "GET") in paths and ("/api/v4/mqtt/publish", "POST") in paths


def test_retained_delete_expired(api_broker):
    topic = unique("expiring")
    publisher = connect(api_broker.port, unique("exp"))
    publisher.wait_published(publisher.publish(topic, b"soon gone", qos=1, retain=True,
                                               properties={"message_expiry_interval": 1}))
    assert [row["topic"] for row in get(api_broker, "/api/v4/retained", topic=topic)["data"]] == [topic]
    time.sleep(1.3)
    status, body = call(api_broker, "DELETE", "/api/v4/retained", params={"expired": "true"})
    assert status == 200 and body["data"]["deleted"] >= 1
    assert get(api_broker, "/api/v4/retained", topic=topic)["data"] == []
    status, body = call(api_broker, "DELETE", "/api/v4/retained")
    assert status == 400 and body["code"] == 108
