"""The per-prefix limit rules of examples/plugins/topic_size_limit.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "plugins"))
from topic_size_limit import limit_for, parse_limits  # noqa: E402


def test_parse_limits_orders_longest_prefix_first():
    assert parse_limits("a/=1KB, a/b/=2MB,, c=10") == [("a/b/", 2 << 20), ("a/", 1024), ("c", 10)]


@pytest.mark.parametrize("text", ["a/", "=1KB", "a/=lots"])
def test_parse_limits_refuses_malformed_pairs(text):
    with pytest.raises(ValueError):
        parse_limits(text)


PREFIXES = st.lists(st.tuples(st.text("ab/", min_size=1, max_size=4), st.integers(0, 10_000)),
                    max_size=5, unique_by=lambda pair: pair[0])


@given(PREFIXES, st.integers(0, 100), st.text("ab/", max_size=8))
def test_the_longest_matching_prefix_decides(pairs, default, topic):
    limits = parse_limits(", ".join(f"{prefix}={size}" for prefix, size in pairs))
    matching = [(prefix, size) for prefix, size in pairs if topic.startswith(prefix)]
    expected = max(matching, key=lambda pair: len(pair[0]))[1] if matching else default
    assert limit_for(limits, default, topic) == expected
