"""Storage across restarts in the ram / disc / disc_only modes: retained messages,
persistent sessions and their queues, kill -9 durability, a long disc_only
backlog, the `queues dump` and `retained dump` commands, and data dirs the
broker must refuse."""

import json
import time

import lmdb
import psutil
import pytest

from actormq.actors.messages import Message
from actormq.storage.lmdb_env import FORMAT_KEY, env_path
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.records import SessionRecord, encode_message, encode_session, queue_key, session_key
from actormq.transport.codec import Puback, Pubcomp, Publish, Pubrec, Pubrel
from tests.integration.brokers import actormq_only, run_cli
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(120)
DISC_MODES = ["disc", "disc_only"]
PERSISTENT = {"session_expiry_interval": 3600}


def storage(mode: str) -> dict:
    return {"queue.storage": mode, "retained.storage": mode}


def go_offline(port, client_id, topic, qos=1):
    client = connect(port, client_id, clean_start=False, properties=PERSISTENT)
    client.subscribe(topic, qos)
    client.disconnect()


def publish_numbers(port, topic, count, qos=1, in_flight=20):
    """Publish 0..count-1, `in_flight` at a time, and wait for every PUBACK / PUBCOMP."""
    publisher = RawClient(port)
    publisher.connect(unique("pub"))
    for first in range(0, count, in_flight):
        numbers = range(first, min(first + in_flight, count))
        publisher.send(*(Publish(topic, str(i).encode(), qos, packet_id=i % 65535 + 1) for i in numbers))
        acks = [publisher.expect(Puback if qos == 1 else Pubrec, timeout=30) for _ in numbers]
        assert all(ack.reason_code < 0x80 for ack in acks), acks
        if qos == 2:
            publisher.send(*(Pubrel(ack.packet_id) for ack in acks))
            for _ in numbers:
                publisher.expect(Pubcomp, timeout=30)
    publisher.disconnect()


def kill9_all(broker) -> None:
    """SIGKILL the node and its workers. Killing the node alone is not a crash:
    its workers see it gone and stop cleanly, flushing the store. The node is
    frozen first so that it cannot start a new worker in between."""
    node = psutil.Process(broker.proc.pid)
    node.suspend()
    for child in node.children(recursive=True):
        child.kill()
    broker.kill9()


def come_back(port, client_id, count, timeout=30):
    client = connect(port, client_id, clean_start=False, properties=PERSISTENT)
    assert client.connack.session_present, "the persistent session did not survive"
    received = [int(m.payload) for m in client.expect(count, timeout=timeout)]
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


@pytest.mark.parametrize("mode", DISC_MODES)
def test_acknowledged_messages_are_not_delivered_again_after_a_restart(make_broker, mode):
    """The rows of acknowledged messages are deleted in batches at the end of
    the loop round; a restart right after the last PUBACK must find them gone."""
    broker = make_broker(settings=storage(mode))
    client_id, topic = unique("durable"), unique("q")
    go_offline(broker.port, client_id, topic)
    publish_numbers(broker.port, topic, 300, in_flight=100)
    client, received = come_back(broker.port, client_id, 300)
    assert received == list(range(300))
    client.disconnect()
    broker.restart()
    publish_numbers(broker.port, topic, 3)
    client, received = come_back(broker.port, client_id, 3)
    assert received == [0, 1, 2], "acknowledged messages came again"


@pytest.mark.slow
@pytest.mark.parametrize("sync", ["on", "off"])
@pytest.mark.parametrize("qos", [1, 2])
@pytest.mark.parametrize("mode", DISC_MODES)
def test_kill9_loses_no_acknowledged_message(make_broker, mode, qos, sync):
    """Commits wait 300 ms, and the node and its workers are killed a few ms
    after the last PUBACK / PUBCOMP: an acknowledgement sent before the commit
    would lose messages. With storage.sync = off a commit reaches the OS only,
    which a killed process does not undo."""
    actormq_only("mosquitto saves its persistence file after the PUBACK, not before")
    count = 200
    broker = make_broker(settings=storage(mode) | {"storage.commit_interval_ms": 300, "storage.sync": sync})
    client_id, topic = unique("durable"), unique("q")
    go_offline(broker.port, client_id, topic, qos=qos)
    time.sleep(0.5)  # the session record's commit: this test is about the messages
    publish_numbers(broker.port, topic, count, qos=qos, in_flight=count)
    kill9_all(broker)
    broker.restart()
    _, received = come_back(broker.port, client_id, count)
    assert received == list(range(count))


@pytest.mark.slow
@pytest.mark.parametrize("sync", ["on", "off"])
def test_kill9_after_a_stream_of_group_commits_loses_no_acknowledged_message(make_broker, sync):
    """The default writer (no commit interval): 2,000 messages, 100 in flight,
    each PUBACK sent once the group commit that holds its message is done."""
    actormq_only("mosquitto saves its persistence file after the PUBACK, not before")
    count = 2000
    broker = make_broker(settings=storage("disc") | {"storage.sync": sync, "queue.max_offline_messages": 0})
    client_id, topic = unique("durable"), unique("q")
    go_offline(broker.port, client_id, topic)
    time.sleep(0.2)
    publish_numbers(broker.port, topic, count, in_flight=100)
    kill9_all(broker)
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


def test_incompatible_format_version_stops_the_start_with_one_clear_line(tmp_path):
    actormq_only("actormq command line")
    data_dir = tmp_path / "data"
    LmdbStore(str(data_dir)).close()
    env = lmdb.open(env_path(str(data_dir)), max_dbs=8)
    with env.begin(write=True) as txn:
        txn.put(FORMAT_KEY, b"99", db=env.open_db(b"meta", txn=txn))
    env.close()
    result = run_cli("run", "-w", "1", "--host", "127.0.0.1", "--port", "0",
                     "--data-dir", str(data_dir), timeout=20)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "format version 99" in lines[0] and str(data_dir) in lines[0], lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("restart", [False, True], ids=["running", "restarted"])
def test_disc_only_delivers_a_long_offline_backlog_in_order(make_broker, restart):
    """5,000 messages, five times the window disc_only holds in memory."""
    actormq_only("queue.storage=disc_only")
    count = 5000
    broker = make_broker(settings=storage("disc_only") | {"queue.max_offline_messages": 0})
    client_id, topic = unique("backlog"), unique("q")
    go_offline(broker.port, client_id, topic)
    publish_numbers(broker.port, topic, count, in_flight=500)
    if restart:
        broker.restart()
    _, received = come_back(broker.port, client_id, count, timeout=90)
    assert received == list(range(count))


def test_queues_dump_shows_progress_on_stderr_for_a_large_store(tmp_path):
    actormq_only("actormq command line")
    store = LmdbStore(str(tmp_path), commit_batch=5000)
    row = encode_message(Message("t", b"p", 1, timestamp=time.time()))
    for seq in range(12_000):
        store.put("queue", queue_key("big", seq), row)
    store.put("session", session_key("big"), encode_session(SessionRecord("big", 5, 3600)))
    store.close()
    big = run_cli("queues", "dump", "--data-dir", str(tmp_path), "--format", "json")
    assert big.returncode == 0, big.stderr
    [queue] = json.loads(big.stdout)
    assert (queue["client_id"], queue["state"], queue["length"]) == ("big", "offline", 12_000)
    assert "reading" in big.stderr, "a progress bar past 10,000 rows"
    small = run_cli("queues", "dump", "--data-dir", str(tmp_path), "--client", "nobody")
    assert small.returncode == 0 and small.stderr == ""


def dumped_state(broker, client_id, expected, timeout=5.0):
    """The dump's state of the client's session, polled until it is `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = dump("queues", "dump", "--data-dir", str(broker.data_dir), "--client", client_id)
        state = rows[0]["state"] if rows else None
        if state == expected or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


@pytest.mark.parametrize("mode", DISC_MODES)
def test_queues_dump_tells_online_from_offline_sessions(make_broker, mode):
    actormq_only("actormq command line")
    broker = make_broker(settings=storage(mode))
    client_id = unique("watched")
    client = connect(broker.port, client_id, clean_start=False, properties=PERSISTENT)
    client.subscribe(unique("t"), 1)
    assert dumped_state(broker, client_id, "online") == "online"
    client.disconnect()
    assert dumped_state(broker, client_id, "offline") == "offline"
    connect(broker.port, client_id, clean_start=False, properties=PERSISTENT)
    assert dumped_state(broker, client_id, "online") == "online"
    broker.stop()
    assert dumped_state(broker, client_id, "offline", timeout=0) == "offline"
