"""Calling VerneMQ webhooks against a real HTTP endpoint on loopback: headers, answers,
Cache-Control variants, slow / dead / wrong endpoints, notifications that never wait."""

import asyncio
import inspect
import logging
import socket
import time

import pytest

from actormq.webhooks.auth_cache import AuthCache
from actormq.webhooks.http import HttpPool, Notifier
from actormq.webhooks.specs import Webhook
from actormq.webhooks.vmq_calls import VmqWebhooks
from tests.webhook_endpoint import Endpoint

REGISTER = {"peer_addr": "127.0.0.1", "peer_port": 50001, "mountpoint": "", "client_id": "c1",
            "username": "joe", "password": b"secret", "clean_session": True}
PUBLISH = {"username": "joe", "mountpoint": "", "client_id": "c1", "qos": 0, "topic": "a/b",
           "payload": b"hello", "retain": False}


@pytest.fixture
def endpoint():
    server = Endpoint().start()
    yield server
    server.stop()


def run(coroutine_function, *webhooks, queue_size=100):
    async def main():
        pool = HttpPool(10)
        calls = VmqWebhooks(pool, Notifier(pool, queue_size), AuthCache(100))
        calls.set_webhooks(webhooks)
        try:
            return await settled(coroutine_function(calls))
        finally:
            await calls.notifier.close()
            await pool.close()
    return asyncio.run(main())


async def settled(answer):
    return await answer if inspect.isawaitable(answer) else answer


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


def test_post_with_vernemq_headers_and_body(endpoint):
    answer = run(lambda calls: calls.decide("auth_on_register", REGISTER),
                 Webhook("auth_on_register", endpoint.url))
    assert answer.ok
    headers, body = endpoint.requests[0]
    assert headers["vernemq-hook"] == "auth_on_register"
    assert headers["Content-Type"] == "application/json"
    assert body == {"peer_addr": "127.0.0.1", "peer_port": 50001, "mountpoint": "", "client_id": "c1",
                    "username": "joe", "password": "secret", "clean_session": True}


def test_error_answer_is_not_authorized_not_unavailable(endpoint):
    endpoint.answer("auth_on_register", {"result": {"error": "not_allowed"}})
    answer = run(lambda calls: calls.decide("auth_on_register", REGISTER),
                 Webhook("auth_on_register", endpoint.url))
    assert (answer.result, answer.error, answer.unavailable) == ("error", "not_allowed", False)


def test_next_goes_on_to_the_following_endpoint(endpoint):
    second = Endpoint().start()
    try:
        endpoint.answer("auth_on_register", {"result": "next"})
        second.answer("auth_on_register", {"result": "ok", "modifiers": {"max_inflight_messages": 3}})
        answer = run(lambda calls: calls.decide("auth_on_register", REGISTER),
                     Webhook("auth_on_register", endpoint.url), Webhook("auth_on_register", second.url))
        assert answer.modifiers == {"max_inflight_messages": 3}
        assert len(endpoint.requests) == len(second.requests) == 1
    finally:
        second.stop()


@pytest.mark.parametrize("status, raw", [(500, b'{"result": "ok"}'), (201, b'{"result": "ok"}'),
                                         (200, b"ok"), (200, b"")])
def test_only_200_with_json_counts_and_fails_closed(endpoint, status, raw):
    endpoint.answer("auth_on_register", status=status, raw=raw)
    answer, stats = run(lambda calls: _decide_and_stats(calls, "auth_on_register", REGISTER),
                        Webhook("auth_on_register", endpoint.url))
    assert answer.result == "error" and answer.unavailable
    assert {"endpoint": endpoint.url, "hook": "auth_on_register", "stat": "errors", "value": 1} in stats


async def _decide_and_stats(calls, hook, event):
    answer = await settled(calls.decide(hook, event))
    return answer, calls.stats()


def test_dead_endpoint_fails_closed_quickly():
    started = time.monotonic()
    answer = run(lambda calls: calls.decide("auth_on_register", REGISTER),
                 Webhook("auth_on_register", dead_url()))
    assert answer.unavailable and answer.result == "error"
    assert time.monotonic() - started < 2


def test_slow_endpoint_times_out_at_response_timeout(endpoint):
    endpoint.answer("auth_on_register", {"result": "ok"}, delay=2)
    started = time.monotonic()
    answer = run(lambda calls: calls.decide("auth_on_register", REGISTER),
                 Webhook("auth_on_register", endpoint.url, response_timeout=300))
    assert answer.unavailable
    assert 0.25 < time.monotonic() - started < 1.5


def test_invalid_modifier_is_an_error(endpoint):
    endpoint.answer("auth_on_publish", {"result": "ok", "modifiers": {"colour": "red"}})
    answer = run(lambda calls: calls.decide("auth_on_publish", PUBLISH),
                 Webhook("auth_on_publish", endpoint.url))
    assert answer.result == "error" and not answer.unavailable and "colour" in answer.error


async def _decide_twice(calls, hook, event, other_event=None):
    first = await settled(calls.decide(hook, event))
    second = calls.decide(hook, other_event or event)
    if calls.cache.stats() and any(row["stat"] == "hits" for row in calls.cache.stats()):
        assert not inspect.isawaitable(second)      # a cached answer is given at once
    second = await settled(second)
    return first, second, calls.cache.stats()


@pytest.mark.parametrize("header, cached", [
    ("max-age=300", True), ("Max-Age=300", True), ("public, max-age=60", True),
    ("max-age=0", False), ("no-store", False), ("no-cache, max-age=60", False), ("max-age:300", False)])
def test_cache_control_variants(endpoint, header, cached):
    endpoint.answer("auth_on_register", {"result": "ok"}, headers={"cache-control": header})
    run(lambda calls: _decide_twice(calls, "auth_on_register", REGISTER),
        Webhook("auth_on_register", endpoint.url))
    assert len(endpoint.requests) == (1 if cached else 2)


def test_cached_publish_ignores_payload_and_keeps_modifiers_but_not_payload(endpoint):
    endpoint.answer("auth_on_publish", {"result": "ok", "modifiers": {"qos": 1, "payload": "eA=="}},
                    headers={"Cache-Control": "max-age=60"})
    first, second, stats = run(lambda calls: _decide_twice(calls, "auth_on_publish", PUBLISH,
                                                           dict(PUBLISH, payload=b"other")),
                               Webhook("auth_on_publish", endpoint.url))
    assert len(endpoint.requests) == 1
    assert first.modifiers == {"qos": 1, "payload": b"x"}
    assert second.modifiers == {"qos": 1}
    values = {row["stat"]: row["value"] for row in stats}
    assert values == {"hits": 1, "misses": 1, "entries": 1}


def test_error_answers_are_never_cached(endpoint):
    endpoint.answer("auth_on_register", {"result": {"error": "no"}}, headers={"Cache-Control": "max-age=60"})
    run(lambda calls: _decide_twice(calls, "auth_on_register", REGISTER),
        Webhook("auth_on_register", endpoint.url))
    assert len(endpoint.requests) == 2


def test_one_warning_per_endpoint_for_max_age_colon(endpoint, caplog):
    endpoint.answer("auth_on_register", {"result": "ok"}, headers={"Cache-Control": "max-age:300"})

    async def three(calls):
        for _ in range(3):
            await settled(calls.decide("auth_on_register", REGISTER))

    with caplog.at_level(logging.WARNING, logger="actormq.webhooks"):
        run(three, Webhook("auth_on_register", endpoint.url))
    warnings = [r.getMessage() for r in caplog.records if "max-age" in r.getMessage()]
    assert len(warnings) == 1 and "max-age=300" in warnings[0]


def test_notifications_never_wait_for_a_slow_endpoint(endpoint):
    # one client id: all its events take one lane of 10 / 4 = 2 places
    endpoint.answer("on_publish", {}, delay=0.5)

    async def publish_many(calls):
        started = time.monotonic()
        for number in range(50):
            calls.notify("on_publish", dict(PUBLISH, payload=str(number).encode()))
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.7)
        return elapsed, dict(calls.notifier.counters)

    elapsed, counters = run(publish_many, Webhook("on_publish", endpoint.url), queue_size=10)
    assert elapsed < 0.05
    assert counters[endpoint.url, "dropped"] == 48
    endpoint.wait_for(2, hook="on_publish")
    assert [body["payload"] for body in endpoint.bodies("on_publish")] == ["MA==", "MQ=="]


def test_notifications_reach_every_endpoint_in_order(endpoint):
    async def notify(calls):
        for hook in ("on_register", "on_client_wakeup", "on_client_gone"):
            calls.notify(hook, REGISTER)
            await asyncio.sleep(0.05)
        await calls.notifier.drain(2)
        await asyncio.sleep(0.05)

    run(notify, *(Webhook(hook, endpoint.url) for hook in ("on_register", "on_client_wakeup", "on_client_gone")))
    assert endpoint.hooks() == ["on_register", "on_client_wakeup", "on_client_gone"]
    assert endpoint.bodies("on_client_gone") == [{"mountpoint": "", "client_id": "c1"}]
