"""The trie answers exactly what the reference matcher answers, for random
filter sets, topic names and removals; validation raises nothing but ProtocolError."""

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.errors import ProtocolError
from actormq.transport.topics import TopicTrie, matches, validate_topic_filter, validate_topic_name

name_level = st.sampled_from(["a", "b", "", "$SYS", "$x", "ab"])
topic_names = st.lists(name_level, min_size=1, max_size=5).map("/".join).filter(bool)
filter_level = st.sampled_from(["a", "b", "", "$SYS", "+", "ab"])


@st.composite
def topic_filters(draw):
    levels = draw(st.lists(filter_level, min_size=1, max_size=5))
    if draw(st.booleans()):
        levels.append("#")
    topic_filter = "/".join(levels) or "a"
    if draw(st.integers(0, 4)) == 0:
        topic_filter = f"$share/{draw(st.sampled_from(['g', 'h']))}/{topic_filter}"
    return topic_filter


def expected(live, topic_name):
    return {f: dict(keys) for f, keys in live.items() if keys and matches(f, topic_name)}


@settings(max_examples=300, deadline=None)
@given(
    subscriptions=st.lists(st.tuples(topic_filters(), st.integers(0, 3)), max_size=30),
    removals=st.lists(st.tuples(st.integers(0, 29), st.booleans()), max_size=20),
    names=st.lists(topic_names, min_size=1, max_size=10),
)
def test_trie_match_equals_reference_matcher(subscriptions, removals, names):
    trie = TopicTrie()
    live: dict[str, dict] = {}
    for topic_filter, key in subscriptions:
        validate_topic_filter(topic_filter)
        assert trie.add(topic_filter, key, (topic_filter, key)) is (topic_filter not in live)
        live.setdefault(topic_filter, {})[key] = (topic_filter, key)
    for topic_name in names:  # warm the cache before removals
        assert dict(trie.match(topic_name)) == expected(live, topic_name)
    for index, check_now in removals:
        if not subscriptions:
            break
        topic_filter, key = subscriptions[index % len(subscriptions)]
        was_last = live.get(topic_filter) == {key: (topic_filter, key)}
        assert trie.remove(topic_filter, key) is was_last
        live.get(topic_filter, {}).pop(key, None)
        if was_last:
            del live[topic_filter]
        if check_now:
            for topic_name in names:
                assert dict(trie.match(topic_name)) == expected(live, topic_name)
    for topic_name in names:
        result = trie.match(topic_name)
        assert len(result) == len({f for f, _ in result})
        assert dict(result) == expected(live, topic_name)
    assert len(trie) == len(live) and set(trie.filters()) == set(live)


tricky_text = st.lists(
    st.sampled_from(["a", "/", "+", "#", "$", "$share/", "\x00", "\ud800", "é", "g", " "]), max_size=12
).map("".join) | st.text()


@settings(max_examples=500, deadline=None)
@given(tricky_text)
def test_validation_raises_only_protocol_error(text):
    for check, code in ((validate_topic_name, 0x90), (validate_topic_filter, 0x8F)):
        try:
            check(text)
        except ProtocolError as error:
            assert error.reason_code == code


@settings(max_examples=300, deadline=None)
@given(topic_filters(), topic_names)
def test_valid_filters_match_without_error(topic_filter, topic_name):
    validate_topic_filter(topic_filter)
    validate_topic_name(topic_name)
    assert matches(topic_filter, topic_name) in (True, False)
