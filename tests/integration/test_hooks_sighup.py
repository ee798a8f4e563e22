"""SIGHUP reloads plugins' settings (`plugin.<name>.<key>`) on a real broker: a
changed limit of the topic_size_limit example plugin applies to the clients
already connected, and a bad value keeps the running settings."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.brokers import actormq_only
from tests.integration.clients import connect, unique
from tests.integration.test_operations import wait_for_log

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"
QUOTA_EXCEEDED = 0x97


def config_text(default_limit: str) -> str:
    return (f"plugins.paths = {EXAMPLES}\nplugins.order = topic_size_limit\n"
            f"plugin.topic_size_limit.limits = wide/=1KB\n"
            f"plugin.topic_size_limit.default = {default_limit}\n")


@pytest.fixture
def limited(make_broker, tmp_path):
    actormq_only("actormq plugins")
    conf = tmp_path / "actormq.conf"
    conf.write_text(config_text("10B"))
    return conf, make_broker("-c", str(conf))


def test_sighup_applies_a_changed_plugin_setting_to_connected_clients(limited):
    conf, broker = limited
    publisher = connect(broker.port, unique("pub"))
    topic = unique("narrow")
    publisher.publish(topic, b"x" * 50, qos=1)
    conf.write_text(config_text("100B"))
    since = len(broker.log())
    os.kill(broker.proc.pid, signal.SIGHUP)
    wait_for_log(broker, r"plugin topic_size_limit: settings reloaded \(default\)", since)
    wait_for_log(broker, r"config reloaded: plugin\.topic_size_limit\.default\n", since)
    publisher.publish(topic, b"x" * 50, qos=1)          # the same client, the new limit
    publisher.publish(topic, b"x" * 101, qos=1)
    publisher.publish(unique("wide/"), b"x" * 500, qos=1)   # the unchanged prefix limit
    assert list(publisher.publish_codes.values()) == [QUOTA_EXCEEDED, 0x10, QUOTA_EXCEEDED, 0x10]


def test_sighup_with_a_bad_plugin_setting_keeps_the_running_one(limited):
    conf, broker = limited
    conf.write_text(config_text("lots"))
    since = len(broker.log())
    os.kill(broker.proc.pid, signal.SIGHUP)
    found = wait_for_log(broker, r"config not reloaded, the running one stays: (.*)", since)
    assert "plugin.topic_size_limit.default" in found.group(1)
    assert f"{conf}:4" in found.group(1)
    publisher = connect(broker.port, unique("pub"))
    publisher.publish(unique("narrow"), b"x" * 11, qos=1)
    publisher.publish(unique("narrow"), b"x" * 10, qos=1)
    assert list(publisher.publish_codes.values()) == [QUOTA_EXCEEDED, 0x10]
    assert "settings reloaded" not in broker.log()[since:]
