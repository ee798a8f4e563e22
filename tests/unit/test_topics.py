"""Topic validation, shared-subscription parsing, the reference matcher and the
trie, against the examples of MQTT 5.0 section 4.7 (spec ids use the 5.0 numbering)."""

import pytest

from actormq.errors import ProtocolError
from actormq.transport.topics import (
    CACHE_LIMIT,
    TopicTrie,
    has_wildcard,
    matches,
    parse_shared,
    validate_topic_filter,
    validate_topic_name,
)


def reason_of(check, text):
    with pytest.raises(ProtocolError) as caught:
        check(text)
    return caught.value.reason_code


# --- validation -------------------------------------------------------------

@pytest.mark.parametrize("name", ["sport", "/", "sport/tennis/player1", "/finance", "a//b", "$SYS/x", "é/ü"])
def test_valid_topic_names(name):
    validate_topic_name(name)


@pytest.mark.parametrize("name", ["sport/+", "#", "sport/tennis#", "a+b"])
def test_wildcards_not_allowed_in_topic_names_MQTT_3_3_2_2(name):
    assert reason_of(validate_topic_name, name) == 0x90


def test_topic_name_at_least_one_character_MQTT_4_7_3_1():
    assert reason_of(validate_topic_name, "") == 0x90
    assert reason_of(validate_topic_filter, "") == 0x8F


def test_null_character_rejected_MQTT_4_7_3_2():
    assert reason_of(validate_topic_name, "a\x00b") == 0x90
    assert reason_of(validate_topic_filter, "a/\x00/#") == 0x8F


def test_at_most_65535_utf8_bytes_MQTT_4_7_3_3():
    validate_topic_name("a" * 65535)
    validate_topic_filter("a" * 65533 + "/#")
    assert reason_of(validate_topic_name, "a" * 65536) == 0x90
    assert reason_of(validate_topic_name, "é" * 32768) == 0x90  # 65536 bytes, 32768 characters
    assert reason_of(validate_topic_filter, "é" * 32768) == 0x8F


def test_lone_surrogate_is_not_utf8_MQTT_1_5_4_1():
    assert reason_of(validate_topic_name, "a\ud800") == 0x90
    assert reason_of(validate_topic_filter, "a\ud800") == 0x8F


@pytest.mark.parametrize("topic_filter", ["#", "sport/#", "sport/tennis/player1/#", "+", "+/tennis/#",
                                          "sport/+/player1", "+/+", "/+", "sport/", "$SYS/#"])
def test_valid_topic_filters(topic_filter):
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", ["sport/tennis#", "sport/tennis/#/ranking", "#/", "##", "a/#b"])
def test_multi_level_wildcard_whole_last_level_MQTT_4_7_1_1(topic_filter):
    assert reason_of(validate_topic_filter, topic_filter) == 0x8F


@pytest.mark.parametrize("topic_filter", ["sport+", "sport/+tennis", "++", "a/b+/c"])
def test_single_level_wildcard_whole_level_MQTT_4_7_1_2(topic_filter):
    assert reason_of(validate_topic_filter, topic_filter) == 0x8F


# --- shared subscriptions ---------------------------------------------------

def test_parse_shared_splits_group_and_filter():
    assert parse_shared("$share/consumers/sport/+") == ("consumers", "sport/+")
    assert parse_shared("$share/g/#") == ("g", "#")
    assert parse_shared("sport/#") == (None, "sport/#")
    assert parse_shared("$share") == (None, "$share")


@pytest.mark.parametrize("topic_filter", ["$share/g/a", "$share/g/+/b", "$share/g/#", "$share/g//"])
def test_valid_shared_filters(topic_filter):
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", ["$share//a", "$share/g+/a", "$share/#/a", "$share/g",
                                          "$share/g/", "$share/g/a#", "$share/", "$share/g/#/x"])
def test_share_name_rules_MQTT_4_8_2_1_and_MQTT_4_8_2_2(topic_filter):
    assert reason_of(validate_topic_filter, topic_filter) == 0x8F


def test_has_wildcard():
    assert has_wildcard("a/+/b") and has_wildcard("#") and has_wildcard("$share/g/a/#")
    assert not has_wildcard("a/b") and not has_wildcard("$share/g/a")


# --- matching (reference matcher and trie agree on every example) ------------

MATCHING = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player2", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+", "finance", True),
    ("a/+/c", "a//c", True),
    ("sport/tennis", "Sport/Tennis", False),
    ("sport/tennis", "sport/tennis/", False),
    ("sport / tennis", "sport / tennis", True),
    ("$share/g/sport/+", "sport/tennis", True),
]

DOLLAR = [
    ("#", "$SYS/monitor/Clients", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("+", "$SYS", False),
    ("$share/g/#", "$SYS/x", False),
    ("a/#", "a/$SYS", True),
]


def trie_matches(topic_filter, topic_name):
    trie = TopicTrie()
    trie.add(topic_filter, "client", 1)
    return [f for f, _ in trie.match(topic_name)] == [topic_filter]


@pytest.mark.parametrize("topic_filter,topic_name,expected", MATCHING)
def test_wildcard_matching_examples_MQTT_4_7_1(topic_filter, topic_name, expected):
    assert matches(topic_filter, topic_name) is expected
    assert trie_matches(topic_filter, topic_name) is expected


@pytest.mark.parametrize("topic_filter,topic_name,expected", DOLLAR)
def test_dollar_topics_not_matched_by_leading_wildcard_MQTT_4_7_2_1(topic_filter, topic_name, expected):
    assert matches(topic_filter, topic_name) is expected
    assert trie_matches(topic_filter, topic_name) is expected


def test_no_normalisation_when_matching_MQTT_4_7_3_4():
    assert not matches("caf\u00e9", "cafe\u0301")
    assert not trie_matches("caf\u00e9", "cafe\u0301")


# --- trie bookkeeping -------------------------------------------------------

def test_add_reports_new_filters_and_remove_reports_last_key():
    trie = TopicTrie()
    assert trie.add("a/+", "c1", {"qos": 1}) is True
    assert trie.add("a/+", "c2", {"qos": 0}) is False
    assert len(trie) == 1
    assert trie.get("a/+") == {"c1": {"qos": 1}, "c2": {"qos": 0}}
    assert trie.remove("a/+", "c1") is False
    assert trie.remove("a/+", "nobody") is False
    assert trie.remove("a/+", "c2") is True
    assert len(trie) == 0 and trie.get("a/+") == {} and list(trie.filters()) == []
    assert trie.remove("a/+", "c2") is False


def test_match_returns_every_matching_filter_with_its_entries():
    trie = TopicTrie()
    for topic_filter in ["a/b", "a/+", "a/#", "#", "+/b", "b/#", "$share/g/a/b", "$share/h/a/+"]:
        trie.add(topic_filter, topic_filter + "-client", True)
    found = dict(trie.match("a/b"))
    assert set(found) == {"a/b", "a/+", "a/#", "#", "+/b", "$share/g/a/b", "$share/h/a/+"}
    assert found["a/+"] == {"a/+-client": True}
    assert sorted(trie.filters()) == sorted(["a/b", "a/+", "a/#", "#", "+/b", "b/#", "$share/g/a/b", "$share/h/a/+"])


def test_removing_a_filter_prunes_it_but_keeps_its_neighbours():
    trie = TopicTrie()
    trie.add("a/b/c", 1, None)
    trie.add("a/b", 2, None)
    trie.add("a/#", 3, None)
    trie.remove("a/b/c", 1)
    assert [f for f, _ in trie.match("a/b/c")] == ["a/#"]
    assert sorted(f for f, _ in trie.match("a/b")) == ["a/#", "a/b"]
    trie.remove("a/#", 3)
    trie.remove("a/b", 2)
    assert trie.match("a/b") == [] and trie._root.children == {}


def test_cache_sees_filter_changes_and_shared_value_changes():
    trie = TopicTrie()
    trie.add("a/+", "c1", 1)
    assert dict(trie.match("a/x")) == {"a/+": {"c1": 1}}
    trie.add("a/+", "c2", 2)  # same filter: no invalidation needed, the dict is shared
    assert dict(trie.match("a/x")) == {"a/+": {"c1": 1, "c2": 2}}
    trie.add("a/x", "c3", 3)  # new filter: cache cleared
    assert dict(trie.match("a/x")) == {"a/+": {"c1": 1, "c2": 2}, "a/x": {"c3": 3}}
    trie.remove("a/x", "c3")
    assert dict(trie.match("a/x")) == {"a/+": {"c1": 1, "c2": 2}}


def test_match_result_is_a_fresh_list_each_time():
    trie = TopicTrie()
    trie.add("#", "c", 1)
    first = trie.match("t")
    first.clear()
    assert len(trie.match("t")) == 1


def test_cache_is_bounded():
    trie = TopicTrie()
    trie.add("#", "c", 1)
    for i in range(CACHE_LIMIT + 5):
        trie.match(f"t/{i}")
    assert len(trie._cache) <= CACHE_LIMIT


def test_deep_topics_do_not_recurse():
    trie = TopicTrie()
    deep = "/".join(["a"] * 30000)
    trie.add(deep, "c", 1)
    trie.add("+/" * 10 + "#", "d", 2)
    assert {f for f, _ in trie.match(deep)} == {deep, "+/" * 10 + "#"}
    assert trie.remove(deep, "c")
