"""A clean start takes a client id over without reading the store when its
registry shard knows nobody held it; when the id was held elsewhere the shard
says so (STALE) and a session left in the store goes. A clean start right
after a kill -9 of the holder's worker, on a survivor that is not the id's
shard and held through the take-over (which then leaves the id to it), still
wipes the persistent session: none is present later, whether the survivor
heard of the death before the CONNECT or after."""

from __future__ import annotations

import os
import signal
import time
import zlib

import pytest

from tests.integration.clients import connect, unique
from tests.integration.test_workers import make_node, routed  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(90)

PERSISTENT = {"session_expiry_interval": 3600}


def client_id_of_shard(shard: int, workers: int) -> str:
    client_id = unique("held")
    while zlib.crc32(client_id.encode()) % workers != shard:
        client_id = unique("held")
    return client_id


def test_a_clean_start_right_after_the_holders_death_wipes_its_stored_session(make_node):
    node = make_node(workers=3, **{"queue.storage": "disc"})
    client_id, topic = client_id_of_shard(2, 3), unique("t")
    held = connect(node.ports[0], client_id, clean_start=False, properties=PERSISTENT)
    assert held.subscribe(topic, 1) == [1]
    held.disconnect()
    time.sleep(0.3)     # its worker stored the session offline
    os.kill(node.pids[0], signal.SIGKILL)
    clean = connect(node.ports[1], client_id)       # clean start, no session expiry
    assert not clean.connack.session_present
    deadline = time.monotonic() + 10
    while "worker 0 restarted" not in node.broker.log():
        assert time.monotonic() < deadline, "worker 0 did not come back"
        time.sleep(0.05)
    clean.disconnect()      # after the take-over, which left the id to its clean holder
    back = connect(node.ports[2], client_id, clean_start=False, properties=PERSISTENT)
    assert not back.connack.session_present, "the clean start left the old session behind"
    publisher = connect(node.ports[1], unique("pub"))
    publisher.publish(topic, b"not subscribed any more", qos=1)
    other = connect(node.ports[2], unique("other"))
    other.subscribe(topic, 1)
    routed(publisher, topic, other)
    publisher.publish(topic, b"after", qos=1)
    assert other.expect_one().payload == b"after"
    back.expect_none(0.3)
