"""The clean claims kept for a take-over: a clean start is known from its
CONNECT for at least CLEAN_CLAIMS_KEPT (later ones of the id win), and none
an add finds is three times that old."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actormq.actors.clean_claims import CLEAN_CLAIMS_KEPT, CleanClaims

steps = st.lists(st.tuples(st.sampled_from("abcd"), st.floats(0, 3 * CLEAN_CLAIMS_KEPT)),
                 max_size=40)


@given(steps)
def test_a_clean_start_is_known_for_the_time_kept_and_forgotten_after(steps):
    claims = CleanClaims()
    now = 0.0
    latest: dict[str, float] = {}
    for client_id, pause in steps:
        now += pause
        claims.add(client_id, now)
        latest[client_id] = now
        known = claims.of("abcd")
        for other, connected_at in latest.items():
            if now - connected_at < CLEAN_CLAIMS_KEPT:
                assert known[other] == connected_at
            elif now - connected_at >= 3 * CLEAN_CLAIMS_KEPT:
                assert other not in known
        assert known == {c: t for c, t in claims.items().items() if c in "abcd"}
