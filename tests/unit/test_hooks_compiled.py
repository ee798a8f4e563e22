"""The chains' fast path made for their exact providers: calls counted per run are
exact whichever provider ends a run, latency sampled on one run in SAMPLE_EVERY, a
provider that raises on the fast path follows its policy and sends the chain through
its breaker, a swapped hook function (a trace) is called, and the result is the same
as the general runner's for any mix of answers."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings, strategies as st

from actormq.actors.messages import Message
from actormq.hooks import DROP, NEXT, OK, BreakerSettings, ClientInfo, Error, Hooks, Ok, Plugin
from actormq.hooks.chains import SAMPLE_EVERY

CLIENT = ClientInfo("c1", username="u", peer_host="127.0.0.1", peer_port=50000)


def plugin(name: str, **methods) -> Plugin:
    return type(f"P_{name}", (Plugin,), {"name": name, **methods})()


def hooks_of(*plugins: Plugin, **kwargs) -> Hooks:
    hooks = Hooks(**kwargs)
    for each in plugins:
        hooks.add(each)
    return hooks


def calls_at(hooks: Hooks, point: str) -> dict:
    return {row["name"]: row["points"][point]["calls"] for row in hooks.describe() if point in row["points"]}


def counting_fold(name: str, called: dict, drop_topic: str | None = None):
    def hook(self, who, message):
        called[name] = called.get(name, 0) + 1
        return DROP if message.topic_name == drop_topic else None
    return plugin(name, on_message_publish=hook)


def test_fold_calls_are_exact_when_a_provider_drops_midway():
    called: dict = {}
    hooks = hooks_of(counting_fold("a", called), counting_fold("b", called, drop_topic="drop"),
                     counting_fold("c", called))
    keep, drop = Message("keep", b"x"), Message("drop", b"x")
    for index in range(300):
        message = drop if index % 7 == 0 else keep
        assert hooks.message_publish.fold(CLIENT, message) is (DROP if message is drop else message)
    assert calls_at(hooks, "message.publish") == called
    assert called["c"] < called["b"] == called["a"] == 300


def test_decide_calls_are_exact_when_an_answer_ends_the_run():
    called: dict = {}

    def hook(name, answers):
        def decide(self, client, message):
            called[name] = called.get(name, 0) + 1
            return answers(message)
        return decide

    hooks = hooks_of(
        plugin("a", on_client_authorize_publish=hook("a", lambda m: NEXT)),
        plugin("b", on_client_authorize_publish=hook("b", lambda m: OK if m.topic_name == "ok" else
                                                     Error(0x97, "no") if m.topic_name == "no" else None)),
        plugin("c", on_client_authorize_publish=hook("c", lambda m: NEXT)))
    chain = hooks.client_authorize_publish
    for index in range(500):
        topic = ("ok", "no", "pass")[index % 3]
        decision = chain.decide(CLIENT, Message(topic, b"x"))
        assert decision.allowed == (topic != "no")
        assert decision.decided_by == {"ok": "b", "no": "b", "pass": "default"}[topic]
    assert calls_at(hooks, "client.authorize_publish") == called


def test_latency_is_sampled_on_one_run_in_sample_every():
    hooks = hooks_of(plugin("a", on_message_deliver=lambda self, who, m: None))
    message = Message("t", b"x")
    for _ in range(SAMPLE_EVERY * 10):
        hooks.message_deliver.fold("c1", message)
    stats = hooks.get("a").point_stats
    (deliver,) = stats.values()
    assert len(deliver._latencies) == 10
    assert hooks.describe()[0]["calls"] == SAMPLE_EVERY * 10


def test_a_provider_raising_on_the_fast_path_follows_its_policy_and_breaker():
    state = {"broken": False, "after": 0}

    def flaky(self, client, message):
        if state["broken"]:
            raise RuntimeError("backend down")
        return NEXT

    def after(self, client, message):
        state["after"] += 1
        return OK

    hooks = hooks_of(plugin("flaky", on_client_authorize_publish=flaky, failure_policy="ignore"),
                     plugin("after", on_client_authorize_publish=after),
                     breaker=BreakerSettings(failures=3, open_for=60.0))
    chain = hooks.client_authorize_publish
    message = Message("t", b"x")
    for _ in range(10):
        assert chain.decide(CLIENT, message).decided_by == "after"
    state["broken"] = True
    for _ in range(10):                     # ignore: as if it said next; the breaker opens after 3
        assert chain.decide(CLIENT, message).decided_by == "after"
    flaky_stats = hooks.describe()[0]
    assert (flaky_stats["calls"], flaky_stats["failures"], flaky_stats["skipped"]) == (13, 3, 7)
    assert state["after"] == 20 and hooks.describe()[1]["calls"] == 20


def test_deny_policy_on_the_fast_path_refuses_with_the_chains_code():
    hooks = hooks_of(plugin("boom", on_client_authorize_publish=lambda self, c, m: 1 / 0))
    decision = hooks.client_authorize_publish.decide(CLIENT, Message("t", b"x"))
    assert not decision.allowed and decision.reason_code == 0x87 and decision.decided_by == "boom"


def test_a_swapped_hook_function_is_what_the_fast_path_calls():
    hooks = hooks_of(plugin("a", on_message_publish=lambda self, who, m: None))
    (provider,) = hooks.message_publish.providers
    seen = []
    original = provider.fn

    def traced(who, message):
        seen.append(message.topic_name)
        return original(who, message)

    provider.fn = traced
    hooks.message_publish.fold(CLIENT, Message("traced", b"x"))
    provider.fn = original
    hooks.message_publish.fold(CLIENT, Message("untraced", b"x"))
    assert seen == ["traced"]


ANSWERS = st.sampled_from(["none", "next", "ok", "error", "raise", "modify"])
RESULTS = {"none": None, "next": NEXT, "ok": OK, "error": Error(0x97, "no"), "modify": Ok(qos=0)}


@settings(max_examples=60, deadline=None)
@given(st.lists(ANSWERS, min_size=1, max_size=5), st.integers(1, 2 * SAMPLE_EVERY))
def test_fast_path_answers_and_counts_as_the_general_runner(answers, runs):
    def hook(answer):
        def decide(self, client, message):
            if answer == "raise":
                raise ValueError("no")
            return RESULTS[answer]
        return decide

    plugins = [plugin(f"p{index}", on_client_authorize_publish=hook(answer), failure_policy="ignore")
               for index, answer in enumerate(answers)]
    hooks = hooks_of(*plugins, breaker=BreakerSettings(failures=10_000, open_for=1.0))
    chain = hooks.client_authorize_publish
    message = Message("t", b"x")
    expected = chain._decide_from(0, (CLIENT, message), False)      # the general runner
    for _ in range(runs):
        got = chain.decide(CLIENT, message)
        assert (got.allowed, got.reason_code, got.decided_by, got.modifiers) == \
            (expected.allowed, expected.reason_code, expected.decided_by, expected.modifiers)
    ends = next((index for index, answer in enumerate(answers) if answer in ("ok", "error", "modify")),
                len(answers) - 1)
    assert [row["calls"] for row in hooks.describe()] == \
        [runs + 1 if index <= ends else 0 for index in range(len(answers))]


def test_notify_calls_are_counted_each_and_sampled_one_in_sample_every():
    seen = []
    hooks = hooks_of(plugin("watch", on_client_connected=lambda self, client: seen.append(client)))

    async def run() -> None:
        for _ in range(SAMPLE_EVERY * 2):
            hooks.client_connected.notify(CLIENT)
        await hooks.stop()
    asyncio.run(run())
    (connected,) = hooks.get("watch").point_stats.values()
    assert len(seen) == connected.calls == SAMPLE_EVERY * 2 and len(connected._latencies) == 2
