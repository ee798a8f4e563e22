"""A duplicate QoS 2 PUBLISH (its packet id still awaits PUBREL) is not a new
message: the publish authorization and message.publish chains are not asked
again, the client gets its PUBREC again and subscribers the message once."""

from __future__ import annotations

import pytest

from actormq.transport.codec import Pubcomp, Publish, Pubrec, Pubrel
from tests.integration.brokers import start_broker
from tests.integration.clients import connect, unique
from tests.integration.hookplugins import events, plugin_settings
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("qos2")
    calls = workdir / "calls.jsonl"
    broker = start_broker(workdir, settings=plugin_settings(
        "publish_log", **{"plugin.publish_log.file": str(calls)}))
    broker.calls = calls
    yield broker
    broker.stop()


@pytest.mark.parametrize("version", [4, 5])
def test_a_duplicate_qos2_publish_is_not_decided_again(logged, version):
    topic = unique("dup")
    subscriber = connect(logged.port, unique("sub"))
    subscriber.subscribe(topic, 2)
    raw = RawClient(logged.port, version=version)
    raw.connect(unique("pub"))
    raw.send(Publish(topic, b"first", qos=2, packet_id=7))
    assert raw.expect(Pubrec).packet_id == 7
    raw.send(Publish(topic, b"first", qos=2, packet_id=7, dup=True))
    assert raw.expect(Pubrec).packet_id == 7
    raw.send(Pubrel(7))
    assert raw.expect(Pubcomp).packet_id == 7
    raw.send(Publish(topic, b"second", qos=2, packet_id=7))    # released: a new message
    assert raw.expect(Pubrec).packet_id == 7
    raw.send(Pubrel(7))
    assert raw.expect(Pubcomp).packet_id == 7
    assert [m.payload for m in subscriber.expect(2)] == [b"first", b"second"]
    seen = events(logged.calls, lambda found: ["publish", topic, "second"] in found)
    assert [call for call in seen if call[1] == topic] == [
        ["authorize", topic, "first"], ["publish", topic, "first"],
        ["authorize", topic, "second"], ["publish", topic, "second"]]
