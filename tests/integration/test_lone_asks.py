"""A QoS 1/2 message that goes alone to an idle worker (`actormq run -w 2`,
`queue.storage = disc`, a clean subscriber on the other worker) does not ask
for a durability answer: only messages sent in batches pace the publishers.
Either way every message arrives once and in order."""

from __future__ import annotations

import time

import pytest

from actormq.actors.forwarding import ASK_EVERY, IDLE_SECONDS
from tests.integration.clients import connect, unique
from tests.integration.test_durable_asks import durable_asks, watch_asks
from tests.integration.test_workers import numbers, routed
from tests.integration.test_workers_core import start_node

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    started = start_node(tmp_path_factory.mktemp("lone"), **{"queue.storage": "disc",
                                                              "sys_interval": 1})
    yield started
    started.broker.stop()


def clean_pair(node, qos: int):
    """A clean subscriber on worker 0 and a publisher on worker 1 that routes to
    it, a watcher of the asks, and the asks so far."""
    subscriber_side, publisher_side = node.ports
    topic = unique("lone")
    watcher = watch_asks(node)
    subscriber = connect(subscriber_side, unique("sub"))
    subscriber.subscribe(topic, qos)
    publisher = connect(publisher_side, unique("pub"))
    routed(publisher, topic, subscriber)
    return topic, watcher, subscriber, publisher, durable_asks(watcher)


@pytest.mark.parametrize("qos", [1, 2])
def test_messages_alone_on_the_bus_ask_nothing_and_keep_their_order(node, qos):
    topic, watcher, subscriber, publisher, asked = clean_pair(node, qos)
    count = 3 * ASK_EVERY
    for number in range(count):     # one at a time, after the bus has been idle
        time.sleep(10 * IDLE_SECONDS)
        publisher.publish(topic, str(number).encode(), qos=qos)
    assert numbers(subscriber) == list(range(count))
    assert durable_asks(watcher) == asked, "a message alone on the bus asked for an answer"


def test_a_burst_still_paces_its_publisher(node):
    topic, watcher, subscriber, publisher, asked = clean_pair(node, 1)
    count = 40 * ASK_EVERY
    sent = [publisher.publish(topic, str(n).encode(), qos=1, wait=False) for n in range(count)]
    for info in sent:
        publisher.wait_published(info)
    assert numbers(subscriber, quiet=0.5) == list(range(count))
    assert durable_asks(watcher, at_least=asked + 1) > asked
