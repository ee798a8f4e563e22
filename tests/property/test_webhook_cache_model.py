"""The auth cache against a dict model: bounded, never returns an expired entry, LRU order."""

from hypothesis import given, settings, strategies as st

from actormq.webhooks.auth_cache import AuthCache
from actormq.webhooks.cache_control import max_age
from actormq.webhooks.vmq_answers import Answer

operations = st.lists(st.tuples(st.sampled_from(["insert", "lookup", "tick", "sweep"]),
                                st.integers(0, 6), st.integers(1, 20)), max_size=80)


@settings(max_examples=200, deadline=None)
@given(operations, st.integers(1, 4))
def test_cache_matches_model(ops, bound):
    now = [0.0]
    cache = AuthCache(bound, lambda: now[0])
    model: dict[int, float] = {}   # client number -> expiry, in LRU order (oldest first)
    for op, client, seconds in ops:
        body = {"client_id": str(client)}
        if op == "insert":
            model.pop(client, None)
            model[client] = now[0] + seconds
            while len(model) > bound:
                del model[next(iter(model))]
            cache.insert("e", "auth_on_register", body, seconds, Answer("ok"))
        elif op == "lookup":
            expected = client in model and model[client] > now[0]
            if client in model and not expected:
                del model[client]
            if expected:
                model[client] = model.pop(client)
            assert (cache.lookup("e", "auth_on_register", body) is not None) == expected
        elif op == "tick":
            now[0] += seconds / 4
        else:
            cache.sweep()
            model = {c: t for c, t in model.items() if t > now[0]}
        assert len(cache) <= bound


directive = st.sampled_from(["public", "private", "must-revalidate", "s-maxage=5", "immutable"])


@given(st.lists(directive, max_size=3), st.integers(0, 10**6), st.booleans(), st.randoms())
def test_max_age_found_among_any_directives(others, seconds, upper, rnd):
    name = "MAX-AGE" if upper else "max-age"
    parts = others + [f"{name}={seconds}"]
    rnd.shuffle(parts)
    assert max_age(", ".join(parts)) == (seconds or None)
    assert max_age(", ".join(parts + ["no-store"])) is None
