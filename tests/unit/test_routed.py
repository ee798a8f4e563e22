"""What routing one message did, as the value Router.route returns
(`actors/routed.py`): deliveries counted, the notes of deliveries joined (a
durable write, a full queue, congestion), the ack ids of peers; the common
outcome a shared constant. Also Broker.publish in a real core (no sockets)."""

from __future__ import annotations

from hypothesis import given, strategies as st

from actormq.actors import routed
from actormq.actors.messages import Message, SubOptions
from actormq.actors.router import Router
from actormq.transport.codec import Subscribe, Subscription
from tests.unit.core_harness import Core


class NotingSession:
    """A session whose deliveries answer with a given note (None: plain)."""

    online = True

    def __init__(self, note=None) -> None:
        self.note = note
        self.got = 0

    def deliver(self, message, qos, retain, sub_ids, encoded):
        self.got += 1
        return self.note


def router_with(notes: dict, acks=None):
    sessions = {client_id: NotingSession(note) for client_id, note in notes.items()}
    ack_ids = iter(acks or ())
    router = Router(0, sessions, lambda worker, message, target: next(ack_ids, None))
    for client_id in sessions:
        router.subscribe(client_id, "t/#", SubOptions(qos=1))
    return router, sessions


def msg(topic="t/1", qos=1):
    return Message(topic, b"x", qos, False, {}, None, 0.0, "pub")


def test_plain_deliveries_come_back_as_the_shared_constant_of_their_count():
    router, _ = router_with({"a": None, "b": None, "c": None})
    first, second = router.route(msg()), router.route(msg())
    assert first is second is routed.delivered(3)
    assert first.delivered == 3 and not first.pending and not first.quota_exceeded
    assert router.route(msg("other")) is routed.NOT_DELIVERED


def test_durable_writes_of_many_subscribers_join_into_one_note():
    router, _ = router_with({"a": routed.WROTE_DURABLE, "b": routed.WROTE_DURABLE, "c": None})
    outcome = router.route(msg())
    assert outcome.delivered == 3 and outcome.durable and outcome.pending
    assert not outcome.quota_exceeded and outcome.congested == ()


def test_a_full_queue_and_a_congested_subscriber_are_both_told():
    congested = NotingSession()
    router, _ = router_with({"full": routed.QUEUE_FULL, "slow": routed.congestion((congested,))})
    outcome = router.route(msg())
    assert outcome.quota_exceeded and outcome.congested == (congested,) and outcome.delivered == 2


def test_peers_ack_ids_are_awaited_and_overlapping_subscriptions_count_once():
    router, sessions = router_with({"a": None}, acks=[41])
    router.subscribe("a", "t/+", SubOptions(qos=0))
    router.add_remote_route(1, "t/#")
    outcome = router.route(msg())
    assert outcome.acks == (41,) and outcome.pending and outcome.delivered == 2
    assert sessions["a"].got == 1


@given(st.lists(st.sampled_from([0, 1, 2, "durable", "full", "ack"]), max_size=8))
def test_join_sums_counts_and_keeps_every_note(parts):
    values = [p if isinstance(p, int) else
              {"durable": routed.WROTE_DURABLE, "full": routed.QUEUE_FULL,
               "ack": routed.awaiting(7)}[p] for p in parts]
    total = 0
    for value in values:
        total = routed.join(total, value)
    outcome = routed.outcome(total)
    assert outcome.delivered == sum(p for p in parts if isinstance(p, int))
    assert outcome.durable == ("durable" in parts)
    assert outcome.quota_exceeded == ("full" in parts)
    assert outcome.acks == (7,) * parts.count("ack")


def test_broker_publish_returns_the_outcome_and_keeps_no_flags():
    core = Core()
    try:
        subscriber = core.client(5)
        subscriber.connect("s")
        subscriber.send(Subscribe(1, [Subscription("t/#", qos=1)]))
        outcome = core.broker.publish(msg())
        assert outcome is routed.delivered(1)
        assert core.broker.publish(msg("nobody")) is routed.NOT_DELIVERED
        assert not any(hasattr(core.broker, name)
                       for name in ("wrote_durable", "quota_exceeded", "congested"))
    finally:
        core.close()


@given(st.integers(min_value=1, max_value=2**40))
def test_a_forwarded_message_is_one_delivery_awaiting_its_ack(ack_id):
    fields = ("delivered", "durable", "acks", "quota_exceeded", "congested", "pending")
    made, joined = routed.forwarded(ack_id), routed.awaiting(ack_id).counted(1)
    assert [getattr(made, f) for f in fields] == [getattr(joined, f) for f in fields]
