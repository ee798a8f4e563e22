"""The hook chains without a broker: order, ok / next / error, modifiers, folds,
notify queues, async answers, timeouts, failure policies, the circuit breaker."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given, settings, strategies as st

from actormq.actors.messages import Message
from actormq.hooks import (DROP, NEXT, OK, BreakerSettings, ClientInfo, Continue, Decision, Error,
                           HookPoint, Hooks, Ok, Plugin, modified)

CLIENT = ClientInfo("c1", username="u", peer_host="127.0.0.1", peer_port=50000)


def plugin(name: str, **methods) -> Plugin:
    """An instance of a Plugin subclass named `name` with the given hook methods."""
    cls = type(f"P_{name}", (Plugin,), {"name": name, **methods})
    return cls()


def hooks_of(*plugins: Plugin, **kwargs) -> Hooks:
    hooks = Hooks(**kwargs)
    for each in plugins:
        hooks.add(each)
    return hooks


def run(coro):
    return asyncio.run(coro)


def test_no_plugin_means_no_chain_at_any_point():
    hooks = Hooks()
    assert all(hooks.chain(point) is None for point in HookPoint)
    assert hooks.message_publish is None and hooks.client_authenticate is None


def test_only_hooked_points_get_a_chain():
    hooks = hooks_of(plugin("a", on_message_publish=lambda self, c, m: None))
    assert hooks.message_publish is not None
    assert hooks.message_deliver is None and hooks.client_authenticate is None


def test_decide_runs_in_plugin_order_and_the_first_answer_ends_it():
    calls = []

    def answer(name, result):
        def hook(self, client, message):
            calls.append(name)
            return result
        return hook

    hooks = hooks_of(plugin("a", on_client_authorize_publish=answer("a", NEXT)),
                     plugin("b", on_client_authorize_publish=answer("b", Error(0x97, "too big"))),
                     plugin("c", on_client_authorize_publish=answer("c", OK)))
    decision = hooks.client_authorize_publish.decide(CLIENT, Message("t", b"x"))
    assert calls == ["a", "b"]
    assert decision == Decision(False, 0x97, "too big", decided_by="b")


def test_ok_with_modifiers_is_the_decision():
    hooks = hooks_of(plugin("auth", on_client_authenticate=lambda self, c: Ok(
        max_inflight_messages=5, mountpoint="tenant1", superuser=True)))
    decision = hooks.client_authenticate.decide(CLIENT)
    assert decision.allowed and decision.decided_by == "auth"
    assert dict(decision.modifiers) == {"max_inflight_messages": 5, "mountpoint": "tenant1",
                                        "superuser": True}


@pytest.mark.parametrize("point, expected", [
    (HookPoint.CLIENT_AUTHENTICATE, Decision(False, 0x86, "no plugin allowed it", decided_by="default")),
    (HookPoint.CLIENT_AUTHORIZE_PUBLISH, Decision(True, decided_by="default")),
    (HookPoint.CLIENT_AUTHORIZE_SUBSCRIBE, Decision(True, decided_by="default")),
])
def test_when_all_say_next_the_default_decides(point, expected):
    hooks = hooks_of(plugin("a", **{point.method: lambda self, *args: None}),
                     plugin("b", **{point.method: lambda self, *args: NEXT}))
    args = {"client": CLIENT, "message": Message("t", b""), "topic_filter": "a/#", "options": None}
    assert hooks.chain(point).decide(*(args[name.strip()] for name in point.args.split(","))) == expected


def test_the_default_is_configurable():
    hooks = hooks_of(plugin("a", on_client_authenticate=lambda self, c: NEXT),
                     defaults={HookPoint.CLIENT_AUTHENTICATE: "allow"})
    assert hooks.client_authenticate.decide(CLIENT).allowed


def test_a_modifier_the_point_does_not_take_is_a_failure(caplog):
    hooks = hooks_of(plugin("bad", on_client_authorize_subscribe=lambda self, c, f, o: Ok(mountpoint="x")))
    with caplog.at_level(logging.ERROR, "actormq.hooks"):
        decision = hooks.client_authorize_subscribe.decide(CLIENT, "a/b", None)
    assert not decision.allowed and decision.reason_code == 0x87
    assert "plugin bad failed at client.authorize_subscribe" in caplog.text
    assert "mountpoint not allowed" in caplog.text


def test_a_wrong_kind_of_answer_is_a_failure():
    hooks = hooks_of(plugin("odd", on_client_authenticate=lambda self, c: "yes"))
    decision = hooks.client_authenticate.decide(CLIENT)
    assert decision == Decision(False, 0x88, "plugin odd failed", decided_by="odd")


@pytest.mark.parametrize("policy, allowed_by", [("deny", None), ("ignore", "b")])
def test_a_raising_provider_follows_its_failure_policy(policy, allowed_by):
    def boom(self, client):
        raise RuntimeError("backend down")

    crashing = plugin("a", on_client_authenticate=boom)
    crashing.settings = {**crashing.settings, "failure_policy": policy}
    hooks = hooks_of(crashing, plugin("b", on_client_authenticate=lambda self, c: OK))
    decision = hooks.client_authenticate.decide(CLIENT)
    if allowed_by is None:
        assert decision == Decision(False, 0x88, "plugin a failed", decided_by="a")
    else:
        assert decision.allowed and decision.decided_by == allowed_by
    assert hooks.get("a").stats.failures == 1


def test_async_decisions_return_a_future_and_the_chain_goes_on_after_them():
    async def slow_next(self, client):
        await asyncio.sleep(0.01)
        return NEXT

    async def main():
        hooks = hooks_of(plugin("a", on_client_authenticate=slow_next),
                         plugin("b", on_client_authenticate=lambda self, c: Ok(client_id="renamed")))
        pending = hooks.client_authenticate.decide(CLIENT)
        assert isinstance(pending, asyncio.Future)
        decision = await pending
        assert decision.decided_by == "b" and decision.modifiers["client_id"] == "renamed"

    run(main())


def test_a_sync_chain_answers_without_a_loop():
    hooks = hooks_of(plugin("a", on_client_authenticate=lambda self, c: OK))
    assert isinstance(hooks.client_authenticate.decide(CLIENT), Decision)


@pytest.mark.parametrize("policy", ["deny", "ignore"])
def test_an_async_provider_that_times_out_follows_its_policy(policy, caplog):
    async def hang(self, client):
        await asyncio.sleep(10)

    async def main():
        slow = plugin("slow", on_client_authenticate=hang)
        slow.settings = {**slow.settings, "timeout": 0.05, "failure_policy": policy}
        hooks = hooks_of(slow, plugin("b", on_client_authenticate=lambda self, c: OK))
        started = asyncio.get_running_loop().time()
        decision = await hooks.client_authenticate.decide(CLIENT)
        assert asyncio.get_running_loop().time() - started < 1
        return decision, hooks.get("slow").stats

    with caplog.at_level(logging.ERROR, "actormq.hooks"):
        decision, stats = run(main())
    assert decision.allowed is (policy == "ignore")
    assert stats.timeouts == 1 and "no answer within 0.05s" in caplog.text


def test_the_breaker_stops_calling_a_plugin_that_keeps_failing_and_logs_once_per_burst(caplog):
    calls = []

    def flaky(self, client):
        calls.append(1)
        raise ConnectionError("refused")

    hooks = hooks_of(plugin("flaky", on_client_authenticate=flaky),
                     breaker=BreakerSettings(failures=3, open_for=0.2))
    with caplog.at_level(logging.ERROR, "actormq.hooks"):
        decisions = [hooks.client_authenticate.decide(CLIENT) for _ in range(10)]
    assert len(calls) == 3
    assert all(not d.allowed for d in decisions)
    stats = hooks.get("flaky").stats
    assert (stats.failures, stats.skipped) == (3, 7)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "not called for 0.2s" in lines[1]


def test_the_breaker_lets_one_call_through_after_open_for_and_a_success_closes_it():
    answers = iter([RuntimeError("x"), RuntimeError("x"), OK, OK])

    def hook(self, client):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    hooks = hooks_of(plugin("p", on_client_authenticate=hook),
                     breaker=BreakerSettings(failures=2, open_for=0.05))
    chain = hooks.client_authenticate
    assert not chain.decide(CLIENT).allowed and not chain.decide(CLIENT).allowed
    assert not chain.decide(CLIENT).allowed          # open: not called
    import time
    time.sleep(0.06)
    assert chain.decide(CLIENT).allowed and chain.decide(CLIENT).allowed
    assert hooks.get("p").breaker.in_a_row == 0


def test_fold_keeps_the_same_object_when_nobody_changes_it():
    message = Message("t", b"payload")
    hooks = hooks_of(plugin("a", on_message_deliver=lambda self, cid, m: None),
                     plugin("b", on_message_deliver=lambda self, cid, m: m))
    assert hooks.message_deliver.fold("sub", message) is message


def test_fold_hands_each_change_to_the_next_provider():
    seen = []

    def upper(self, client, message):
        return modified(message, topic_name=message.topic_name.upper())

    def stamp(self, client, message):
        seen.append(message.topic_name)
        return modified(message, properties={"user_property": [("by", client.client_id)]})

    original = Message("a/b", b"x")
    hooks = hooks_of(plugin("upper", on_message_publish=upper), plugin("stamp", on_message_publish=stamp))
    result = hooks.message_publish.fold(CLIENT, original)
    assert seen == ["A/B"]
    assert (result.topic_name, result.properties) == ("A/B", {"user_property": [("by", "c1")]})
    assert original.topic_name == "a/b"


def test_drop_ends_a_fold():
    later = []
    hooks = hooks_of(plugin("drop", on_message_publish=lambda self, c, m: DROP),
                     plugin("later", on_message_publish=lambda self, c, m: later.append(m)))
    assert hooks.message_publish.fold(CLIENT, Message("t", b"")) is DROP and later == []


@pytest.mark.parametrize("policy, dropped", [("deny", True), ("ignore", False)])
def test_a_fold_that_fails_drops_or_keeps_the_message_per_policy(policy, dropped):
    bad = plugin("bad", on_message_publish=lambda self, c, m: "not a message")
    bad.settings = {**bad.settings, "failure_policy": policy}
    message = Message("t", b"")
    result = hooks_of(bad).message_publish.fold(CLIENT, message)
    assert (result is DROP) if dropped else (result is message)


def test_async_fold():
    async def slow_upper(self, client, message):
        await asyncio.sleep(0.01)
        return modified(message, payload=message.payload.upper())

    async def main():
        hooks = hooks_of(plugin("a", on_message_publish=slow_upper),
                         plugin("b", on_message_publish=lambda self, c, m: modified(m, qos=0)))
        pending = hooks.message_publish.fold(CLIENT, Message("t", b"abc", qos=1))
        assert isinstance(pending, asyncio.Future)
        result = await pending
        assert (result.payload, result.qos) == (b"ABC", 0)

    run(main())


def test_notify_does_not_call_the_hook_inline_and_keeps_the_order():
    seen = []

    async def main():
        hooks = hooks_of(plugin("obs", on_client_connected=lambda self, c: seen.append(c.client_id)))
        for n in range(5):
            hooks.client_connected.notify(ClientInfo(f"c{n}"))
        assert seen == []
        await hooks.get("obs").queue.drain()

    run(main())
    assert seen == ["c0", "c1", "c2", "c3", "c4"]


def test_a_full_notify_queue_drops_and_counts():
    seen = []

    async def slow(self, client):
        await asyncio.sleep(0.001)
        seen.append(client.client_id)

    async def main():
        observer = plugin("obs", on_client_connected=slow)
        observer.settings = {**observer.settings, "notify_queue": 3}
        hooks = hooks_of(observer)
        for n in range(10):
            hooks.client_connected.notify(ClientInfo(f"c{n}"))
        await hooks.get("obs").queue.drain()
        return hooks.get("obs").stats

    stats = run(main())
    assert seen == ["c0", "c1", "c2"] and stats.dropped == 7


def test_a_raising_notify_hook_is_counted_and_the_next_event_still_runs():
    seen = []

    def hook(self, client):
        if client.client_id == "bad":
            raise ValueError("nope")
        seen.append(client.client_id)

    async def main():
        hooks = hooks_of(plugin("obs", on_client_connected=hook))
        for name in ("a", "bad", "b"):
            hooks.client_connected.notify(ClientInfo(name))
        await hooks.get("obs").queue.drain()
        return hooks.get("obs").stats

    stats = run(main())
    assert seen == ["a", "b"] and stats.failures == 1


def test_disable_enable_and_replace_rebuild_the_chains_in_place():
    first = plugin("a", on_client_authenticate=lambda self, c: Error(0x86))
    hooks = hooks_of(first, plugin("b", on_client_authenticate=lambda self, c: OK))
    assert hooks.client_authenticate.decide(CLIENT).decided_by == "a"
    hooks.disable("a")
    assert hooks.client_authenticate.decide(CLIENT).decided_by == "b"
    hooks.enable("a")
    assert hooks.client_authenticate.decide(CLIENT).decided_by == "a"
    hooks.replace("a", plugin("a", on_client_authenticate=lambda self, c: NEXT))
    assert hooks.client_authenticate.decide(CLIENT).decided_by == "b"
    assert hooks.names() == ["a", "b"]
    hooks.remove("b")
    assert hooks.client_authenticate.decide(CLIENT).decided_by == "default"


def test_a_method_named_like_a_hook_that_is_none_is_refused():
    with pytest.raises(TypeError, match="on_publish is not a hook point"):
        plugin("typo", on_publish=lambda self, c, m: None).hooks()


def test_an_async_deliver_hook_is_refused():
    async def deliver(self, client_id, message):
        return None

    with pytest.raises(TypeError, match="must not be async"):
        plugin("slow", on_message_deliver=deliver).hooks()


def test_a_plugin_name_is_loaded_once():
    hooks = hooks_of(plugin("a"))
    with pytest.raises(ValueError, match="already loaded"):
        hooks.add(plugin("a"))


def test_enhanced_auth_may_continue():
    hooks = hooks_of(plugin("scram", on_client_enhanced_auth=lambda self, c, x: Continue(b"server-first", state=1)))
    decision = hooks.client_enhanced_auth.decide(CLIENT, None)
    assert decision.more and decision.auth_data == b"server-first" and decision.state == 1


def test_continue_is_refused_outside_enhanced_auth():
    hooks = hooks_of(plugin("x", on_client_authenticate=lambda self, c: Continue(b"")))
    assert not hooks.client_authenticate.decide(CLIENT).allowed


def test_points_are_found_by_any_vocabulary():
    assert HookPoint.from_name("auth_on_register") is HookPoint.CLIENT_AUTHENTICATE
    assert HookPoint.from_name("OnBasicAuth") is HookPoint.CLIENT_AUTHENTICATE
    assert HookPoint.from_name("client.authenticate") is HookPoint.CLIENT_AUTHENTICATE
    assert HookPoint.from_name("on_deliver_m5") is HookPoint.MESSAGE_DELIVER
    assert HookPoint.from_name("OnMsgDropped") is HookPoint.MESSAGE_DROPPED
    assert HookPoint.from_name("session.takenover") is HookPoint.SESSION_TAKEN_OVER


def test_stats_give_mean_and_p99():
    hooks = hooks_of(plugin("a", on_client_authenticate=lambda self, c: OK))
    for _ in range(200):
        hooks.client_authenticate.decide(CLIENT)
    shown = hooks.describe()[0]
    assert shown["calls"] == 200 and shown["hooks"] == ["client.authenticate"]
    assert 0 <= shown["mean_ms"] <= shown["p99_ms"] < 50


ANSWERS = st.sampled_from(["ok", "next", "error", "raise"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ANSWERS, st.sampled_from(["deny", "ignore"])), max_size=6),
       st.sampled_from(["allow", "deny"]))
def test_decide_equals_a_plain_model(answers, default):
    def make(index, answer):
        def hook(self, client, message):
            if answer == "raise":
                raise RuntimeError(index)
            return {"ok": OK, "next": NEXT, "error": Error(0x80 + index)}[answer]
        return hook

    plugins = []
    for index, (answer, policy) in enumerate(answers):
        each = plugin(f"p{index}", on_client_authorize_publish=make(index, answer))
        each.settings = {**each.settings, "failure_policy": policy}
        plugins.append(each)
    hooks = hooks_of(*plugins, defaults={HookPoint.CLIENT_AUTHORIZE_PUBLISH: default})
    expected = (default == "allow", "default")
    for index, (answer, policy) in enumerate(answers):
        if answer == "ok":
            expected = (True, f"p{index}")
            break
        if answer == "error" or (answer == "raise" and policy == "deny"):
            expected = (False, f"p{index}")
            break
    if not answers:
        assert hooks.client_authorize_publish is None
        return
    decision = hooks.client_authorize_publish.decide(CLIENT, Message("t", b""))
    assert (decision.allowed, decision.decided_by) == expected


def test_an_async_hook_that_answers_without_waiting_decides_synchronously():
    async def cached(self, client, message):
        return Error(0x87, "from the cache")

    hooks = hooks_of(plugin("cache", on_client_authorize_publish=cached))
    decision = hooks.client_authorize_publish.decide(CLIENT, Message("t", b""))
    assert decision == Decision(False, 0x87, "from the cache", decided_by="cache")


def test_an_async_hook_that_waits_part_way_finishes_on_the_loop():
    steps = []

    async def two_steps(self, client, message):
        steps.append("before")
        await asyncio.sleep(0.01)
        steps.append("after")
        await asyncio.sleep(0)
        return OK

    async def main():
        hooks = hooks_of(plugin("steps", on_client_authorize_publish=two_steps))
        pending = hooks.client_authorize_publish.decide(CLIENT, Message("t", b""))
        assert steps == ["before"] and isinstance(pending, asyncio.Future)
        assert (await pending).allowed and steps == ["before", "after"]

    run(main())


def test_the_readme_maps_every_hook_point_as_the_registry_does():
    from pathlib import Path

    from actormq.hooks import mapping_table
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert mapping_table() in readme
