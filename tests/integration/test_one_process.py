"""The two layouts of `actormq run -w 1`. By default the worker runs in the
node's process: a kill -9 ends the broker, and a restart finds its persisted
sessions, their queues and the retained messages; the management API, the
admin commands over the control channel and SIGTERM with clients connected
work as with a worker process. With --supervised (node.supervised) the worker
is a process of its own that the node restarts when it is killed."""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from tests.integration.brokers import actormq_only, run_cli
from tests.integration.clients import connect, unique
from tests.integration.mgmtapi import call
from tests.integration.test_workers import _await_restart, _queue_length

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("_actormq")]

PERSISTENT = {"session_expiry_interval": 3600}
DISC = {"queue.storage": "disc", "retained.storage": "disc"}


@pytest.fixture
def _actormq():
    actormq_only("the process layout of actormq")


def _queued_while_away(broker, count: int) -> tuple[str, str, str]:
    """A persistent session gone offline with `count` messages committed to its
    queue, and a retained message: (client id, topic, retained topic)."""
    client_id, topic, kept = unique("away"), unique("q"), unique("kept")
    away = connect(broker.port, client_id, clean_start=False, properties=PERSISTENT)
    away.subscribe(topic, 1)
    away.disconnect()
    publisher = connect(broker.port, unique("pub"))
    publisher.publish(kept, b"retained", qos=1, retain=True)
    for number in range(count):
        publisher.publish(topic, str(number).encode(), qos=1)
    publisher.disconnect()
    deadline = time.monotonic() + 5
    while _queue_length(broker, client_id) < count:
        assert time.monotonic() < deadline, "the queued messages were never committed"
        time.sleep(0.05)
    return client_id, topic, kept


def _comes_back(broker, client_id: str, topic: str, kept: str, count: int) -> None:
    back = connect(broker.port, client_id, clean_start=False, properties=PERSISTENT)
    assert back.connack.session_present, "the persistent session did not survive"
    assert [int(m.payload) for m in back.expect(count)] == list(range(count))
    back.publish(topic, b"marker", qos=1)
    assert back.expect_one().payload == b"marker", "more than the queued messages came"
    late = connect(broker.port, unique("late"))
    late.subscribe(kept, 1)
    assert late.expect_one().payload == b"retained"


def test_kill9_ends_the_one_process_broker_and_a_restart_keeps_what_it_persisted(make_broker):
    broker = make_broker(settings=DISC)
    process = psutil.Process(broker.proc.pid)
    assert process.children(recursive=True) == []
    client_id, topic, kept = _queued_while_away(broker, 5)
    online = connect(broker.port, unique("online"))
    broker.proc.send_signal(signal.SIGKILL)
    assert broker.proc.wait(5) == -signal.SIGKILL
    assert online.wait_closed(2), "a client kept its connection to a killed broker"
    broker.start()      # the kernel dropped the data dir lock and the port claims
    _comes_back(broker, client_id, topic, kept, 5)


def test_a_supervised_worker_at_w1_is_restarted_when_killed_and_its_sessions_resume(make_broker):
    broker = make_broker("--supervised", settings=DISC)
    [worker] = psutil.Process(broker.proc.pid).children()
    client_id, topic, kept = _queued_while_away(broker, 5)
    online = connect(broker.port, unique("online"))
    worker.kill()
    assert online.wait_closed(2), "the killed worker's client kept its connection"
    _await_restart(broker, 0, 20)      # a new process imports and restores: slow on a busy machine
    assert broker.running
    [restarted] = psutil.Process(broker.proc.pid).children()
    assert restarted.pid != worker.pid
    _comes_back(broker, client_id, topic, kept, 5)


def test_the_control_channel_reaches_the_worker_in_the_node_process(broker):
    status, body = call(broker, "POST", "/api/v4/admin/worker.ping", body={})
    assert status == 200 and body["code"] == 0
    assert [(row["worker"], row["pid"]) for row in body["data"]] == [(0, broker.proc.pid)]
    result = run_cli("node", "status", "--data-dir", str(broker.data_dir))
    assert result.returncode == 0, result.stderr
    assert f"| {broker.proc.pid} |" in result.stdout.replace("  ", " ")


def test_sigterm_with_clients_connected_disconnects_them_and_exits_0(broker):
    clients = [connect(broker.port, unique("c"), clean_start=False, properties=PERSISTENT)
               for _ in range(3)]
    for client in clients:
        client.subscribe(unique("t"), 1)
    start = time.monotonic()
    broker.proc.send_signal(signal.SIGTERM)
    assert broker.proc.wait(10) == 0, broker.log()
    assert time.monotonic() - start < 5.0
    for client in clients:
        assert client.wait_closed(1), f"{client.client_id} is still connected"
        assert client.disconnect_reason == 0x8B      # server shutting down
