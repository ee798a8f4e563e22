"""Storage across restarts in the ram / disc / disc_only modes: retained messages,
persistent sessions and their queues, kill -9 durability, the `queues dump` and
`retained dump` commands, and an unusable data dir."""

import json

import pytest

from tests.integration.brokers import actormq_only, run_cli
from tests.integration.clients import connect, unique

pytestmark = pytest.mark.timeout(120)
DISC_MODES = ["disc", "disc_only"]
PERSISTENT = {"session_expiry_interval": 3600}


def storage(mode: str) -> dict:
    return {"queue.storage": mode, "retained.storage": mode}


def go_offline(port, client_id, topic, qos=1):
    client = connect(port, client_id, clean_start=False, properties=PERSISTENT)
    client.subscribe(topic, qos)
    client.disconnect()


def publish_numbers(port, topic, count, qos=1):
    """Publish 0..count-1 and wait for every PUBACK / PUBCOMP."""
    publisher = connect(port, unique("pub"))
    sent = [publisher.publish(topic, str(i).encode(), qos=qos, wait=False) for i in range(count)]
    for info in sent:
        publisher.wait_published(info, timeout=30)
    publisher.disconnect()


def come_back(port, client_id, count):
    client = connect(port, client_id, clean_start=False, properties=PERSISTENT)
    assert client.connack.session_present, "the persistent session did not survive"
    received = [int(m.payload) for m in client.expect(count, timeout=30)]
    client.expect_none(0.5)
    return client, received


@pytest.mark.parametrize("mode", ["ram", *DISC_MODES])
def test_retained_message_survives_a_restart_in_disc_modes(make_broker, mode):
    broker = make_broker(settings=storage(mode))
    topic = unique("kept")
    connect(broker.port, unique("pub")).publish(topic, b"durable", qos=1, retain=True)
    broker.restart()
    late = connect(broker.port, unique("late"))
    late.subscribe(topic, 1)
    expected = [] if mode == "ram" else [b"durable"]
    assert [m.payload for m in late.drain(quiet=0.5)] == expected


@pytest.mark.parametrize("mode", DISC_MODES)
def test_persistent_session_and_its_queue_survive_a_restart(make_broker, mode):
    broker = make_broker(settings=storage(mode))
    client_id, topic = unique("durable"), unique("q")
    go_offline(broker.port, client_id, topic)
    publish_numbers(broker.port, topic, 3)
    broker.restart()
    client, received = come_back(broker.port, client_id, 3)
    assert received == [0, 1, 2]
    connect(broker.port, unique("pub")).publish(topic, b"3", qos=1)
    assert client.expect_one().payload == b"3", "the subscription did not survive"


@pytest.mark.slow
@pytest.mark.parametrize("qos", [1, 2])
@pytest.mark.parametrize("mode", DISC_MODES)
def test_kill9_loses_no_acknowledged_message(make_broker, mode, qos):
    actormq_only("mosquitto saves its persistence file after the PUBACK, not before")
    count = 200
    broker = make_broker(settings=storage(mode))
    client_id, topic = unique("durable"), unique("q")
    go_offline(broker.port, client_id, topic, qos=qos)
    publish_numbers(broker.port, topic, count, qos=qos)
    broker.kill9()
    broker.restart()
    _, received = come_back(broker.port, client_id, count)
    assert received == list(range(count))


def dump(*args: str) -> list[dict]:
    result = run_cli(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("mode", DISC_MODES)
def test_queues_dump_shows_queued_messages(make_broker, mode):
    actormq_only("actormq command line")
    broker = make_broker(settings=storage(mode))
    client_id, topic = unique("dumped"), unique("q")
    go_offline(broker.port, client_id, topic)
    publish_numbers(broker.port, topic, 5)
    for state in ("running", "stopped"):
        rows = dump("queues", "dump", "--data-dir", str(broker.data_dir))
        mine = [row for row in rows if row.get("client_id") == client_id]
        assert len(mine) == 1 and mine[0]["length"] == 5, f"{state}: {rows}"
        broker.stop()


@pytest.mark.parametrize("mode", DISC_MODES)
def test_retained_dump_shows_retained_messages(make_broker, mode):
    actormq_only("actormq command line")
    broker = make_broker(settings=storage(mode))
    topic = unique("kept")
    connect(broker.port, unique("pub")).publish(topic, b"dump me", qos=1, retain=True)
    for state in ("running", "stopped"):
        rows = dump("retained", "dump", "--data-dir", str(broker.data_dir))
        assert [row.get("topic") for row in rows].count(topic) == 1, f"{state}: {rows}"
        broker.stop()


def test_unusable_data_dir_stops_the_start_with_one_clear_line(tmp_path):
    actormq_only("actormq command line")
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data dir should be")
    result = run_cli("run", "-w", "1", "--host", "127.0.0.1", "--port", "0",
                     "--data-dir", str(blocker), timeout=20)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(blocker) in lines[0] or "data" in lines[0], lines[0]
