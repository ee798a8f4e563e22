"""Which peers' plain messages skip a session that moved here or away
(`actors/peer_views.py`): a peer that has not answered a move here still
routes the session to its old owner, which forwards it; once it answered,
its messages reach the session directly. Also Router.route_skipping."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from actormq.actors.messages import Message, SubOptions
from actormq.actors.peer_views import PeerViews
from actormq.actors.router import Router


def test_a_move_here_skips_each_peer_until_it_answered():
    views = PeerViews()
    views.moved({1, 2}, "c", 7, skip=True)
    assert views.skipping == {1: {"c"}, 2: {"c"}}
    views.answered(1, "c", 7)
    assert views.skipping == {2: {"c"}}
    views.answered(2, "c", 99)          # another move's answer changes nothing
    assert views.skipping == {2: {"c"}}
    views.answered(2, "c", 7)
    assert views.skipping == {}


def test_a_peer_that_still_routes_here_from_an_earlier_stay_reaches_the_session():
    """Here, away (move 1), back here (move 2): a peer that answered neither
    routes here still; after move 1's answer it routes away; after move 2's, here."""
    views = PeerViews()
    views.moved({1}, "c", 1, skip=False)
    views.moved({1}, "c", 2, skip=True)
    assert views.skipping == {}
    views.answered(1, "c", 1)
    assert views.skipping == {1: {"c"}}
    views.answered(1, "c", 2)
    assert views.skipping == {}


def test_a_dead_peer_is_forgotten():
    views = PeerViews()
    views.moved({1, 2}, "c", 7, skip=True)
    views.peer_gone(1)
    assert views.skipping == {2: {"c"}}


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=12), st.randoms())
def test_every_answer_leaves_nothing_behind(moves, random):
    """Whatever the moves and the order of answers between peers (each peer
    answers its own moves in order), nothing is skipped once all are answered."""
    views = PeerViews()
    for move_id, (peer, skip) in enumerate(moves):
        views.moved({peer}, "c", move_id, skip)
    answers = {peer: [m for m, (p, _) in enumerate(moves) if p == peer] for peer in range(3)}
    while any(answers.values()):
        peer = random.choice([p for p, left in answers.items() if left])
        views.answered(peer, "c", answers[peer].pop(0))
    assert views.skipping == {} and views._pending == {}


class Plain:
    online = True

    def __init__(self) -> None:
        self.got = []

    def deliver(self, message, qos, retain, sub_ids, encoded):
        self.got.append(message.payload)


def test_route_skipping_leaves_out_the_skipped_sessions_only():
    sessions = {"moved": Plain(), "other": Plain()}
    router = Router(0, sessions)
    for client_id in sessions:
        router.subscribe(client_id, "t/#", SubOptions(qos=1))
    message = Message("t/1", b"m", 1, False, {}, None, 0.0, "pub")
    outcome = router.route_skipping({"moved"}, message)
    assert outcome.delivered == 1
    assert sessions["other"].got == [b"m"] and sessions["moved"].got == []


def test_a_move_is_unanswered_until_every_peer_answered_it_whatever_it_skips():
    """What holds a session's next hand-over (takeover): every peer's answer to
    each of its moves, here or away, skipping or not."""
    views = PeerViews()
    assert not views.unanswered("c")
    views.moved({1, 2}, "c", 7, skip=True)
    views.moved({3}, "c", 8, skip=False)
    views.moved({1}, "other", 9, skip=True)
    views.answered(1, "c", 7)
    views.answered(2, "c", 7)
    assert views.unanswered("c")
    views.answered(3, "c", 8)
    assert not views.unanswered("c")
    assert views.unanswered("other")
    views.peer_gone(1)
    assert not views.unanswered("other")
