"""The pure parts of the management area: EMQX paging, bans and their
expiry, the node-wide rows of a gathered answer, the API listener address,
packets as trace events, HTTP Basic checking."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actormq.errors import ActormqError
from actormq.mgmt.app import check_basic
from actormq.mgmt.banned import Ban, BanList
from actormq.mgmt.channel import Gathered
from actormq.mgmt.envelope import ApiError, page_of
from actormq.mgmt.plane import parse_listener
from actormq.mgmt.trace import describe
from actormq.transport.codec import Connect, Publish


@given(st.lists(st.integers(), max_size=60), st.integers(1, 20))
def test_pages_cover_every_row_once_in_order(rows, limit):
    seen, number = [], 1
    while True:
        chosen, meta = page_of(rows, number, limit)
        assert meta == {"page": number, "limit": limit, "count": len(rows),
                        "hasnext": number * limit < len(rows)}
        assert len(chosen) <= limit
        seen += chosen
        if not meta["hasnext"]:
            break
        number += 1
    assert seen == rows


def test_filtered_pages_report_count_minus_one():
    assert page_of([1, 2, 3], 1, 2, filtered=True)[1] == {"page": 1, "limit": 2, "count": -1,
                                                          "hasnext": True}
    assert page_of([1, 2, 3], 5, 2) == ([], {"page": 5, "limit": 2, "count": 3, "hasnext": False})


def test_ban_from_emqx_body_defaults_and_errors():
    ban = Ban.from_api({"who": "example", "as": "clientid"}, now=1000)
    assert ban.as_api() == {"who": "example", "as": "clientid", "by": "user", "reason": "",
                            "desc": "", "at": 1000, "until": 1300}
    for body, message in (({"as": "clientid"}, "who is required"),
                          ({"who": "x", "as": "ip"}, "as must be one of clientid, username, peerhost"),
                          ({"who": "x", "as": "username", "at": 10, "until": 5}, "until must be later"),
                          ({"who": "x", "as": "username", "until": "soon"}, "until must be a UNIX time"),
                          ([], "JSON object")):
        with pytest.raises(ValueError, match=message):
            Ban.from_api(body, now=1000)


def test_banlist_matches_client_id_username_and_peer_host_until_expiry(monkeypatch):
    bans = [Ban.from_api({"who": "c1", "as": "clientid"}, now=1000),
            Ban.from_api({"who": "bob", "as": "username", "until": 1100}, now=1000),
            Ban.from_api({"who": "10.0.0.9", "as": "peerhost"}, now=1000),
            Ban.from_api({"who": "::1", "as": "peerhost"}, now=1000)]
    banned = BanList(bans)
    monkeypatch.setattr("actormq.mgmt.banned.time.time", lambda: 1050)
    assert banned.refuses("c1", None, "127.0.0.1:5000")
    assert banned.refuses("c2", "bob", "127.0.0.1:5000")
    assert banned.refuses("c2", None, "10.0.0.9:61000")
    assert banned.refuses("c2", None, "[::1]:61000")
    assert not banned.refuses("c2", "alice", "10.0.0.10:61000")
    monkeypatch.setattr("actormq.mgmt.banned.time.time", lambda: 1200)
    assert not banned.refuses("c2", "bob", "127.0.0.1:5000")        # bob's ban expired
    monkeypatch.setattr("actormq.mgmt.banned.time.time", lambda: 1300)
    assert not banned.refuses("c1", None, "127.0.0.1:5000")         # until is exclusive


def test_gathered_rows_name_node_and_worker():
    gathered = Gathered("n@h", answers={1: [{"a": 1}, {"a": 2}], 0: {"b": 3}, 2: 7},
                        failed={3: "did not answer within 5 s"})
    assert gathered.rows() == [{"node": "n@h", "worker": 0, "b": 3},
                               {"node": "n@h", "worker": 1, "a": 1}, {"node": "n@h", "worker": 1, "a": 2},
                               {"node": "n@h", "worker": 2, "result": 7}]
    assert gathered.failures() == [{"node": "n@h", "worker": 3, "reason": "did not answer within 5 s"}]
    assert not gathered.complete


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8081", ("127.0.0.1", 8081)), ("8081", ("0.0.0.0", 8081)), ("0", None),
    ("[::1]:9000", ("::1", 9000)), ("127.0.0.1:0", ("127.0.0.1", 0))])
def test_listener_addresses(text, expected):
    assert parse_listener(text) == expected


@pytest.mark.parametrize("text", ["localhost:http", "1.2.3.4:70000", "host:"])
def test_bad_listener_address_names_the_key(text):
    with pytest.raises(ActormqError, match="management.listener.http"):
        parse_listener(text)


def test_describe_hides_the_password_and_previews_the_payload():
    connect = describe(Connect("c1", 5, username="u", password=b"secret", keepalive=30))
    assert connect["type"] == "CONNECT" and connect["password"] == "******" and connect["username"] == "u"
    publish = describe(Publish("t", b"x" * 150, 1, False, False, 7, {"correlation_data": b"\x01\x02"}))
    assert publish["payload_size"] == 150 and publish["payload"] == "x" * 100 + "…"
    assert publish["properties"] == {"correlation_data": "0102"} and publish["packet_id"] == 7


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def test_basic_credentials():
    check_basic(_basic("admin", "s3cret"), "admin", "s3cret")
    for header, code in ((None, 104), ("Bearer x", 104), (_basic("admin", "nope"), 103),
                         (_basic("root", "s3cret"), 103), ("Basic !!!", 103), (_basic("admin", ""), 104)):
        with pytest.raises(ApiError) as raised:
            check_basic(header, "admin", "s3cret")
        assert raised.value.status == 401 and raised.value.code == code
