"""A client's PUBLISHes stay in order when the ``message.publish`` chain is switched
off (`actormq plugin disable`) while earlier ones of the same client still wait for
its answer: the later ones queue behind them instead of being routed at once."""

from __future__ import annotations

import pytest

from tests.integration.brokers import start_broker
from tests.integration.clients import connect, unique
from tests.integration.hookplugins import plugin_settings
from tests.integration.mgmtapi import cli

pytestmark = pytest.mark.timeout(60)


def test_publishes_after_a_disable_wait_behind_the_ones_still_folding(tmp_path):
    broker = start_broker(tmp_path, settings=plugin_settings("slowfold", **{"plugin.slowfold.delay": "4"}))
    try:
        topic = f"slowfold/{unique()}"
        subscriber = connect(broker.port, unique())
        subscriber.subscribe(topic, qos=1)
        publisher = connect(broker.port, unique())
        waiting = [publisher.publish(topic, f"m{n}", qos=1, wait=False) for n in range(5)]
        result = cli(broker, "plugin", "disable", "slowfold")
        assert result.returncode == 0, result.stderr
        later = [publisher.publish(topic, f"m{n}", qos=1, wait=False) for n in range(5, 10)]
        for info in waiting + later:
            publisher.wait_published(info, timeout=15)
        payloads = [received.payload for received in subscriber.expect(10, timeout=15)]
        assert payloads == [f"m{n}".encode() for n in range(10)]
    finally:
        broker.stop()
