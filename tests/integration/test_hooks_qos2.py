"""A duplicate QoS 2 PUBLISH (its packet id still awaits PUBREL) is not a new
message: the publish authorization and message.publish chains are not asked
again, the client gets its PUBREC again and subscribers the message once."""

from __future__ import annotations

import pytest

from tests.integration.clients import connect, unique
from tests.integration.hookplugins import events, plugin_settings
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)


def test_a_duplicate_qos2_publish_is_not_decided_again(make_broker, tmp_path):
    calls = tmp_path / "calls.jsonl"
    broker = make_broker(settings=plugin_settings("publish_log", **{
        "plugin.publish_log.file": str(calls)}))
    for version in (4, 5):
        topic = unique(f"dup{version}")
        subscriber = connect(broker.port, unique("sub"))
        subscriber.subscribe(topic, 2)
        raw = RawClient(broker.port, version=version)
        raw.connect(unique("pub"))
        raw.publish_qos2(topic, b"first", 7, duplicate=True)
        raw.publish_qos2(topic, b"second", 7)       # released: a new message
        assert [m.payload for m in subscriber.expect(2)] == [b"first", b"second"]
        seen = events(calls, lambda found, topic=topic: ["publish", topic, "second"] in found)
        assert [call for call in seen if call[1] == topic] == [
            ["authorize", topic, "first"], ["publish", topic, "first"],
            ["authorize", topic, "second"], ["publish", topic, "second"]]
