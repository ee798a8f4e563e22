"""A persistent session moving between the four workers of `actormq run -w 4`
several times a second, while QoS 1 and QoS 2 publishers on every worker keep
publishing: a third worker may hear of a session's second move before its
first (two MOVEs from two workers), so each hand-over waits until every
worker answered the session's previous move. Every message a publisher got
its PUBACK/PUBCOMP for reaches the subscriber, QoS 2 exactly once."""

from __future__ import annotations

import time

import pytest

from tests.integration.clients import unique
from tests.integration.test_handover import (UNLIMITED_DISC, MovingSubscriber,
                                             every_acknowledged_message_delivered_once,
                                             subscribed_with_publishers)
from tests.integration.test_workers import make_node  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(120)

WORKERS = 4
MOVES = 30
BURST = 3               # moves back to back (each once the last one's CONNACK came)
BURST_EVERY = 0.15
# each move goes to the next worker but one or the next: every pair of
# successive moves has a third worker that hears both
STEPS = (1, 2, 3)


def test_a_session_moving_several_times_a_second_loses_nothing_at_four_workers(make_node):
    node = make_node(workers=WORKERS, **UNLIMITED_DISC)
    subscriber = MovingSubscriber(unique("sub"))
    at = 0
    publishers = subscribed_with_publishers(node, subscriber, at)
    time.sleep(0.3)
    for move in range(MOVES):
        if move % BURST == 0:
            time.sleep(BURST_EVERY)
        at = (at + STEPS[move % len(STEPS)]) % WORKERS
        (subscriber.take_over if move % 4 != 3 else subscriber.reconnect)(node.ports[at])
    time.sleep(0.5)
    every_acknowledged_message_delivered_once(publishers, subscriber)
