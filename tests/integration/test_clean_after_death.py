"""A clean start wins over the stored session a dead worker left for the same
client id, whenever the survivors take that worker's sessions over: client
ids held on a worker killed with kill -9 connect clean to survivors and end
those clean sessions at once, before the take-over; a persistent CONNECT
later finds no session present, and none of the old queued messages."""

from __future__ import annotations

import os
import signal
import time
import zlib

import pytest

from tests.integration.clients import connect, unique
from tests.integration.test_workers import make_node  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(90)

PERSISTENT = {"session_expiry_interval": 3600}
CLIENTS = 12


def test_clean_starts_ended_before_the_take_over_discard_the_dead_workers_sessions(make_node):
    node = make_node(workers=3, **{"queue.storage": "disc"})
    # first the ids whose registry shard dies too (their clean REG is lost)
    client_ids = sorted((unique("gone") for _ in range(CLIENTS)),
                        key=lambda client_id: zlib.crc32(client_id.encode()) % 3 != 0)
    topics = {client_id: unique("t") for client_id in client_ids}
    for client_id in client_ids:
        held = connect(node.ports[0], client_id, clean_start=False, properties=PERSISTENT)
        assert held.subscribe(topics[client_id], 1) == [1]
        held.disconnect()
    publisher = connect(node.ports[0], unique("pub"))
    for topic in topics.values():
        publisher.publish(topic, b"old", qos=1)     # queued in each offline session
    publisher.disconnect()
    time.sleep(0.3)     # worker 0 stored the sessions and their queues
    os.kill(node.pids[0], signal.SIGKILL)
    for index, client_id in enumerate(client_ids):
        clean = connect(node.ports[1 + index % 2], client_id, version=4 if index % 3 else 5)
        clean.disconnect()      # before the survivors took the dead worker's sessions over
    deadline = time.monotonic() + 20
    while "worker 0 restarted" not in node.broker.log():
        assert time.monotonic() < deadline, "worker 0 did not come back"
        time.sleep(0.05)
    publishers = {port: connect(port, unique("pub")) for port in node.ports[1:]}
    resumed = []
    for index, client_id in enumerate(client_ids):
        port = node.ports[2 - index % 2]
        back = connect(port, client_id, clean_start=False, properties=PERSISTENT)
        if back.connack.session_present:
            resumed.append(client_id)
        back.subscribe(topics[client_id], 1)
        publishers[port].publish(topics[client_id], b"after", qos=1)    # routed on its worker
        first = back.expect_one()
        assert first.payload == b"after", f"{client_id}: the old session's {first.payload!r} came"
        back.disconnect()
    assert not resumed, f"clean starts left the old sessions of {resumed} behind"
