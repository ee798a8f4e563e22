"""The auth cache: Cache-Control parsing, expiry on lookup and by sweep, LRU bound, counters."""

import pytest

from actormq.webhooks.auth_cache import AuthCache
from actormq.webhooks.cache_control import colon_typo, max_age
from actormq.webhooks.vmq_answers import Answer


@pytest.mark.parametrize("header, seconds", [
    ("max-age=300", 300),
    ("Max-Age=300", 300),
    ("MAX-AGE=30", 30),
    ("public, max-age=45, must-revalidate", 45),
    ("  max-age=45,sthelse", 45),
    ('max-age="60"', 60),
    ("max-age=0", None),
    ("no-store", None),
    ("max-age=300, no-cache", None),
    ("no-store, max-age=300", None),
    ("max-age:300", None),
    ("max-age=", None),
    ("max-age=x", None),
    ("", None),
    (None, None),
])
def test_max_age(header, seconds):
    assert max_age(header) == seconds


def test_colon_typo_names_the_fix():
    assert colon_typo("max-age:300") == "max-age=300"
    assert colon_typo("public, Max-Age : 30") == "max-age=30"
    assert colon_typo("max-age=300") is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


BODY = {"peer_addr": "127.0.0.1", "peer_port": 1, "client_id": "c", "username": "u", "payload": "x"}
OK = Answer("ok", {"max_inflight_messages": 5, "payload": b"p"})


def test_hit_until_expiry_then_miss():
    clock = Clock()
    cache = AuthCache(10, clock)
    assert cache.lookup("e", "auth_on_register", BODY) is None
    cache.insert("e", "auth_on_register", BODY, 30, OK)
    clock.now += 29.9
    assert cache.lookup("e", "auth_on_register", BODY).modifiers == {"max_inflight_messages": 5}
    clock.now += 0.2
    assert cache.lookup("e", "auth_on_register", BODY) is None
    assert len(cache) == 0
    stats = {(row["stat"], row["hook"]): row["value"] for row in cache.stats()}
    assert stats == {("hits", "auth_on_register"): 1, ("misses", "auth_on_register"): 2}


def test_key_ignores_payload_and_peer_port_only():
    cache = AuthCache(10, Clock())
    cache.insert("e", "auth_on_publish", BODY, 30, OK)
    assert cache.lookup("e", "auth_on_publish", dict(BODY, payload="other", peer_port=2)) is not None
    assert cache.lookup("e", "auth_on_publish", dict(BODY, username="v")) is None
    assert cache.lookup("other-endpoint", "auth_on_publish", BODY) is None
    assert cache.lookup("e", "auth_on_register", BODY) is None


def test_sweep_removes_expired_entries_without_lookups():
    clock = Clock()
    cache = AuthCache(10, clock)
    for number in range(5):
        cache.insert("e", "auth_on_register", dict(BODY, client_id=str(number)), 10 + number, OK)
    clock.now += 12.5
    assert cache.sweep() == 3
    assert len(cache) == 2
    assert {row["value"] for row in cache.stats() if row["stat"] == "entries"} == {2}


def test_lru_bound_evicts_least_recently_used():
    cache = AuthCache(2, Clock())
    first, second, third = (dict(BODY, client_id=name) for name in "abc")
    cache.insert("e", "auth_on_register", first, 60, OK)
    cache.insert("e", "auth_on_register", second, 60, OK)
    assert cache.lookup("e", "auth_on_register", first) is not None   # first is now the most recent
    cache.insert("e", "auth_on_register", third, 60, OK)
    assert len(cache) == 2
    assert cache.lookup("e", "auth_on_register", second) is None
    assert cache.lookup("e", "auth_on_register", first) is not None


def test_clear_and_a_zero_bound():
    cache = AuthCache(0, Clock())
    cache.insert("e", "auth_on_register", BODY, 60, OK)
    assert len(cache) == 0
    cache = AuthCache(5, Clock())
    cache.insert("e", "auth_on_register", BODY, 60, OK)
    cache.clear()
    assert len(cache) == 0 and cache.stats() == []


def test_hit_counts_hits_only_and_lookup_then_counts_the_miss():
    clock = Clock()
    cache = AuthCache(10, clock)
    key = ("127.0.0.1", "", "c", "u", b"pw", True, None)
    assert cache.hit("e", "auth_on_register", key) is None            # the caller goes on to lookup
    assert cache.lookup("e", "auth_on_register", None, key) is None
    cache.insert("e", "auth_on_register", None, 30, OK, key)
    assert cache.hit("e", "auth_on_register", key).modifiers == {"max_inflight_messages": 5}
    assert cache.hit("e", "other_hook", key) is None
    clock.now += 31
    assert cache.hit("e", "auth_on_register", key) is None            # expired: removed, no hit
    assert len(cache) == 0
    stats = {(row["stat"], row["hook"]): row["value"] for row in cache.stats()}
    assert stats == {("hits", "auth_on_register"): 1, ("misses", "auth_on_register"): 1}
