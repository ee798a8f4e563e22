"""Hypothesis: acl.conf rules survive writing and reading back, first match wins,
placeholders never widen a rule, and the ACL cache behaves like a small model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.auth.acl_cache import AclCache, AclGeneration
from actormq.auth.acl_emqx import parse_emqx_acl
from actormq.auth.acl_rules import (Action, AllOf, AnyOf, Client, ClientInfo, Eq, Everyone, IpAddr,
                                    Permission, Rule, User, check_rules, rules_for)
from actormq.transport.topics import matches

words = st.sampled_from(["a", "b", "c", "dev", "$SYS", "x1"])
topic_names = st.lists(words, min_size=1, max_size=4).map("/".join)
filters = st.lists(st.sampled_from(["a", "b", "c", "+", "%u", "%c"]), min_size=1, max_size=3).map(
    "/".join) | topic_names.map(lambda t: t + "/#")
names = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_ #+/"), max_size=6)
leaf_whos = st.one_of(st.just(Everyone()), names.map(User), names.map(Client),
                      st.sampled_from(["10.0.0.0/8", "127.0.0.1", "::1"]).map(IpAddr.parse))
whos = st.recursive(leaf_whos, lambda inner: st.lists(inner, min_size=1, max_size=3).flatmap(
    lambda items: st.sampled_from([AllOf(tuple(items)), AnyOf(tuple(items))])), max_leaves=4)
topic_rules = st.lists(filters | topic_names.map(Eq), min_size=1, max_size=3).map(tuple)
rules = st.builds(Rule, st.sampled_from(list(Permission)), whos,
                  st.sampled_from([Action.PUBLISH, Action.SUBSCRIBE, Action.PUBSUB]), topic_rules)


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _who_text(who) -> str:
    if isinstance(who, Everyone):
        return "all"
    if isinstance(who, User):
        return "{user, " + _string(who.name) + "}"
    if isinstance(who, Client):
        return "{clientid, " + _string(who.client_id) + "}"
    if isinstance(who, IpAddr):
        return "{ipaddrs, [" + ", ".join(_string(str(net)) for net in who.networks) + "]}"
    word = "'and'" if isinstance(who, AllOf) else "'or'"
    return "{" + word + ", [" + ", ".join(_who_text(item) for item in who.whos) + "]}"


def _rule_text(rule: Rule) -> str:
    action = {Action.PUBLISH: "publish", Action.SUBSCRIBE: "subscribe", Action.PUBSUB: "pubsub"}[rule.action]
    topics = ", ".join("{eq, " + _string(t.topic) + "}" if isinstance(t, Eq) else _string(t) for t in rule.topics)
    return f"{{{rule.permission.value}, {_who_text(rule.who)}, {action}, [{topics}]}}."


@given(st.lists(rules, max_size=6))
def test_written_rules_read_back_the_same(rule_list):
    text = "%% generated\n" + "\n".join(_rule_text(rule) for rule in rule_list) + "\n"
    parsed = parse_emqx_acl(text)
    assert [(r.permission, r.who, r.action, r.topics) for r in parsed] == \
           [(r.permission, r.who, r.action, r.topics) for r in rule_list]
    assert [r.line_number for r in parsed] == list(range(2, 2 + len(rule_list)))


@given(st.lists(rules, max_size=6), names, names, st.sampled_from([Action.PUBLISH, Action.SUBSCRIBE]),
       topic_names)
def test_first_matching_rule_decides(rule_list, user, client_id, action, topic):
    info = ClientInfo(client_id=client_id, username=user, peer_host="10.0.0.5")
    verdicts = [rule.permission for rule in rule_list if rule.matches(info, int(action), topic)]
    assert check_rules(rule_list, info, action, topic) == (verdicts[0] if verdicts else None)
    assert check_rules(rules_for(rule_list, info), info, action, topic, who_checked=True) == \
        (verdicts[0] if verdicts else None)


@given(names, topic_names)
def test_placeholder_rule_grants_only_the_users_own_subtree(user, topic):
    rule = parse_emqx_acl('{allow, all, pubsub, ["home/%u/#"]}.')
    info = ClientInfo(client_id="c", username=user)
    granted = check_rules(rule, info, Action.PUBLISH, "home/" + topic) is Permission.ALLOW
    own = user != "" and not set(user) & set("+#/") and matches(f"home/{user}/#", "home/" + topic)
    assert granted == own


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["get", "put", "tick", "purge"]), st.integers(0, 5), st.booleans()),
                max_size=60), st.integers(1, 4))
def test_cache_matches_a_model(operations, max_size):
    now = [0.0]
    generation = AclGeneration()
    cache = AclCache(max_size=max_size, ttl=3.0, generation=generation, clock=lambda: now[0])
    model: dict[str, tuple[bool, float]] = {}
    for operation, key, value in operations:
        topic = f"t/{key}"
        if operation == "put":
            model.pop(topic, None)
            while len(model) >= max_size:
                del model[next(iter(model))]
            model[topic] = (value, now[0])
            cache.put(Action.PUBLISH, topic, value)
        elif operation == "get":
            entry = model.get(topic)
            expected = entry[0] if entry and now[0] - entry[1] < 3.0 else None
            if entry and expected is None:
                del model[topic]
            assert cache.get(Action.PUBLISH, topic) == expected
        elif operation == "tick":
            now[0] += 1.0
        else:
            generation.bump()
            model.clear()
        assert len(model) <= max_size
