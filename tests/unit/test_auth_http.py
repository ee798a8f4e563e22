"""HTTP auth / ACL: EMQX 4 request building, status mapping, and the pooled client
against a real aiohttp server on loopback (retries, deadline, fail closed)."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qs, urlencode

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.auth.acl_rules import Action, ClientInfo
from actormq.auth.http_client import HttpClient, RetryPolicy, SourceUnavailable
from actormq.auth.http_request import (RequestSpec, RequestSpecError, acl_answer, auth_answer,
                                       superuser_answer)
from actormq.auth.placeholders import acl_values, client_values, expand
from actormq.transport.codec.reason_codes import ReasonCode

CLIENT = ClientInfo(client_id="c-1", username="ann", peer_host="127.0.0.1", mountpoint="mp/",
                    password=b"pw", cert_cn="cn", cert_dn="dn")


def test_placeholders():
    values = client_values(CLIENT, 1883)
    text = "u=%u c=%c a=%a r=%r P=%P p=%p C=%C d=%d m=%m x=%x"
    assert expand(text, values) == "u=ann c=c-1 a=127.0.0.1 r=mqtt P=pw p=1883 C=cn d=dn m=mp/ x=%x"
    acl = acl_values(CLIENT, Action.SUBSCRIBE, "a/b")
    assert expand("%A %t %u", acl) == "1 a/b ann"
    assert expand("%A", acl_values(CLIENT, Action.PUBLISH, "t")) == "2"
    assert expand("%u", client_values(ClientInfo(client_id="x"))) == ""


def test_get_puts_params_in_the_query():
    spec = RequestSpec.from_settings("auth_req", "http://127.0.0.1:9/auth", "GET", {},
                                     "clientid=%c, username=%u,password=%P")
    built = spec.build(client_values(CLIENT.evolve(password=b"p w")))
    assert built.method == "GET" and built.body is None
    assert built.query == {"clientid": "c-1", "username": "ann", "password": "p w"}


def test_post_form_and_json():
    form = RequestSpec.from_settings("auth_req", "http://h/a", "post", {}, "u=%u,p=%P").build(
        client_values(CLIENT.evolve(password=b"a&b")))
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(form.body.decode()) == {"u": ["ann"], "p": ["a&b"]}
    as_json = RequestSpec.from_settings("acl_req", "http://h/a", "post",
                                        {"content_type": "application/json", "X_Token": "t"},
                                        "access=%A,topic=%t").build(acl_values(CLIENT, Action.PUBLISH, "x/y"))
    assert json.loads(as_json.body) == {"access": "2", "topic": "x/y"}
    assert as_json.headers == {"content-type": "application/json", "x-token": "t"}


@pytest.mark.parametrize("url,method,params", [("ftp://h/x", "get", ""), ("http://h/x", "delete", ""),
                                               ("http://h/x", "get", "novalue")])
def test_bad_request_settings(url, method, params):
    with pytest.raises(RequestSpecError):
        RequestSpec.from_settings("auth_req", url, method, {}, params)


@pytest.mark.parametrize("status,body,outcome,code", [
    (200, b"", "allow", ReasonCode.SUCCESS),
    (200, b"ignore", "ignore", ReasonCode.SUCCESS),
    (401, b"", "refuse", ReasonCode.BAD_USER_NAME_OR_PASSWORD),
    (400, b"", "refuse", ReasonCode.BAD_USER_NAME_OR_PASSWORD),
    (403, b"", "refuse", ReasonCode.NOT_AUTHORIZED),
    (404, b"", "refuse", ReasonCode.NOT_AUTHORIZED),
    (429, b"", "refuse", ReasonCode.QUOTA_EXCEEDED),
    (503, b"", "refuse", ReasonCode.SERVER_UNAVAILABLE),
    (500, b"", "refuse", ReasonCode.SERVER_UNAVAILABLE),
])
def test_auth_status_mapping(status, body, outcome, code):
    answer = auth_answer(status, body)
    assert (answer.outcome, answer.reason_code) == (outcome, code)


def test_acl_and_superuser_mapping():
    assert [acl_answer(s, b) for s, b in [(200, b""), (200, b"ignore"), (403, b""), (500, b"")]] == \
           ["allow", "ignore", "deny", "deny"]
    assert superuser_answer(200) and not superuser_answer(401)


async def _server(handler):
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def test_client_sends_and_retries_transport_errors():
    async def scenario():
        seen = []

        async def handler(request):
            seen.append((request.method, dict(request.query), await request.read()))
            return web.Response(status=401 if request.query.get("u") == "bad" else 200)

        runner, base = await _server(handler)
        client = HttpClient(timeout=2, retry=RetryPolicy(times=3, interval=0.05, backoff=2.0))
        spec = RequestSpec.from_settings("auth_req", base + "/auth", "get", {}, "u=%u")
        try:
            assert await client.send(spec.build({"%u": "good"})) == (200, b"")
            assert (await client.send(spec.build({"%u": "bad"})))[0] == 401
            assert len(seen) == 2  # a status is an answer, never retried
        finally:
            await client.close()
            await runner.cleanup()
        # the server is gone: the retries run out within the deadline
        client = HttpClient(timeout=2, retry=RetryPolicy(times=2, interval=0.05, backoff=2.0))
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            await client.send(spec.build({"%u": "good"}))
        assert time.monotonic() - started < 1.0
        await client.close()

    asyncio.run(scenario())


def test_slow_server_fails_within_the_timeout():
    async def scenario():
        async def slow(request):
            await asyncio.sleep(1)
            return web.Response()

        runner, base = await _server(slow)
        client = HttpClient(timeout=0.3, retry=RetryPolicy(times=3, interval=0.01, backoff=1.0))
        started = time.monotonic()
        try:
            with pytest.raises(SourceUnavailable, match="no answer within 0.3s"):
                await client.send(RequestSpec(base + "/a").build({}))
            assert time.monotonic() - started < 0.8
        finally:
            await client.close()
            await runner.cleanup()

    asyncio.run(scenario())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), min_size=3, max_size=3))
def test_form_body_is_what_urlencode_writes(texts):
    client = ClientInfo(client_id=texts[0], username=texts[1], password=texts[2].encode("utf-8", "replace"))
    values = client_values(client)
    spec = RequestSpec.from_settings("auth_req", "http://h/a", "post", {}, "clientid=%c,user name=%u,p=%P,r=%r x")
    assert spec.build(values).body.decode() == urlencode(
        {"clientid": values["%c"], "user name": values["%u"], "p": values["%P"], "r": "mqtt x"})


def test_built_requests_share_no_state():
    spec = RequestSpec.from_settings("auth_req", "http://h/a", "post", {"X_Token": "t"}, "u=%u")
    first, second = spec.build({"%u": "a"}), spec.build({"%u": "b"})
    assert (first.body, second.body) == (b"u=a", b"u=b")
    assert first.headers == {"x-token": "t", "content-type": "application/x-www-form-urlencoded"}
