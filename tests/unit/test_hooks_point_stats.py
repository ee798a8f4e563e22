"""Hook statistics per hook point and plugin: each point of a plugin counts its
own calls and failures (the plugin's totals add them up), while the plugin's
breaker still opens and closes for all its points at once."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from actormq.actors.messages import Message
from actormq.hooks import NEXT, OK, BreakerSettings, ClientInfo, HookPoint, Hooks, Plugin

CLIENT = ClientInfo("c1", username="u", peer_host="127.0.0.1", peer_port=50000)


def _hooks(**methods) -> Hooks:
    hooks = Hooks(breaker=BreakerSettings(failures=2, open_for=60))
    hooks.add(type("Counted", (Plugin,), {"name": "counted", **methods})())
    return hooks


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40))
def test_each_point_counts_its_own_calls_and_the_plugin_adds_them_up(connects, publishes):
    hooks = _hooks(on_client_authenticate=lambda self, client: OK,
                   on_client_authorize_publish=lambda self, client, message: NEXT)
    for _ in range(connects):
        hooks.client_authenticate.decide(CLIENT)
    for _ in range(publishes):
        hooks.client_authorize_publish.decide(CLIENT, Message("t", b"x"))
    [row] = hooks.describe()
    assert row["points"]["client.authenticate"]["calls"] == connects
    assert row["points"]["client.authorize_publish"]["calls"] == publishes
    assert row["calls"] == connects + publishes


def test_failures_count_at_their_point_and_the_breaker_rests_every_point():
    def boom(self, client, message):
        raise RuntimeError("down")

    hooks = _hooks(on_client_authenticate=lambda self, client: OK, on_client_authorize_publish=boom)
    for _ in range(2):
        hooks.client_authorize_publish.decide(CLIENT, Message("t", b"x"))
    hooks.client_authenticate.decide(CLIENT)        # the breaker is open: skipped here too
    loaded = hooks.get("counted")
    publish, connect = (loaded.point_stats[HookPoint.CLIENT_AUTHORIZE_PUBLISH],
                        loaded.point_stats[HookPoint.CLIENT_AUTHENTICATE])
    assert (publish.calls, publish.failures, publish.skipped) == (2, 2, 0)
    assert (connect.calls, connect.failures, connect.skipped) == (0, 0, 1)
    assert (loaded.stats.failures, loaded.stats.skipped, loaded.stats.healthy) == (2, 1, False)
