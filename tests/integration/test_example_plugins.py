"""The example plugins in examples/plugins on a real broker: per-prefix payload
limits (0x97 with a reason string) and the publisher stamp."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    actormq_only("actormq plugins")
    broker = start_broker(tmp_path_factory.mktemp("examples"), settings={
        "plugins.paths": str(EXAMPLES), "plugins.order": "topic_size_limit, stamp_publisher",
        "plugin.topic_size_limit.limits": "small/=10B, small/big/=1KB",
        "plugin.topic_size_limit.default": "100B"})
    yield broker
    broker.stop()


def test_payloads_over_the_prefix_limit_are_refused(examples):
    subscriber = connect(examples.port, unique())
    subscriber.subscribe("small/#")
    publisher = connect(examples.port, unique())
    publisher.publish("small/a", b"x" * 11, qos=1)
    publisher.publish("small/big/a", b"x" * 500, qos=1)
    publisher.publish("small/a", b"x" * 10, qos=1)
    assert list(publisher.publish_codes.values()) == [0x97, 0, 0]
    assert [len(m.payload) for m in subscriber.expect(2)] == [500, 10]


def test_the_default_limit_applies_elsewhere(examples):
    publisher = connect(examples.port, unique())
    publisher.publish(unique("other"), b"x" * 101, qos=1)
    assert list(publisher.publish_codes.values()) == [0x97]


def test_messages_carry_the_publisher_stamp_and_a_forged_one_is_replaced(examples):
    topic = unique("stamped")
    subscriber = connect(examples.port, unique())
    subscriber.subscribe(topic)
    publisher_id = unique("pub")
    publisher = connect(examples.port, publisher_id, username="alice", password="x")
    publisher.publish(topic, b"hi", properties={"user_property": [("publisher", "someone-else"),
                                                                  ("note", "kept")]})
    got = subscriber.expect_one()
    assert got.properties["user_property"] == [("note", "kept"), ("publisher", publisher_id),
                                               ("username", "alice")]
