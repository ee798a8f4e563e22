"""An on_deliver webhook that holds deliveries to an online persistent session (a slow answer):
the held QoS 1 messages are in the session's stored queue, so a client that drops mid-hold gets
them when it comes back, and so does one whose broker was killed mid-hold (SIGKILL, restarted
on the same data dir) — as without the hook, the publisher's PUBACK came after the store."""

from __future__ import annotations

import base64

import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.webhook_endpoint import Scripted, running_endpoint

pytestmark = pytest.mark.timeout(90)

HOLD_S = 2.0


def answer(hook: str, body: dict):
    if not hook.startswith("on_deliver"):
        return None
    payload = base64.b64decode(body["payload"]).decode()
    done = base64.b64encode(f"{payload} done".encode()).decode()
    return Scripted({"result": "ok", "modifiers": {"payload": done}}, delay=HOLD_S)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(broker, endpoint): a broker whose on_deliver webhook answers after HOLD_S."""
    actormq_only("webhooks are actormq's")
    for endpoint in running_endpoint(answer):       # stopped when this loop ends
        workdir = tmp_path_factory.mktemp("deliver_hold")
        (workdir / "actormq.conf").write_text(f"webhooks.d.hook = on_deliver\nwebhooks.d.endpoint = {endpoint.url}\n")
        broker = start_broker(workdir, "-c", str(workdir / "actormq.conf"))
        yield broker, endpoint
        broker.stop()


def held_messages(broker, endpoint, topic: str):
    """A persistent subscriber and three QoS 1 messages acknowledged to their publisher while
    the endpoint still holds the first one's on_deliver answer."""
    client_id = unique("held")
    subscriber = connect(broker.port, client_id, version=4, clean_start=False)
    assert subscriber.subscribe(topic + "/#", qos=1) == [1]
    with connect(broker.port, unique("pub"), version=4) as publisher:
        for number in (1, 2, 3):
            publisher.publish(f"{topic}/a", f"held-{number}".encode(), qos=1)
    endpoint.wait_body("on_deliver", lambda body: body["client_id"] == client_id)
    return client_id, subscriber


def names(received) -> list[bytes]:
    """Each message's payload up to the webhook's " done" (whether the hook answered in time)."""
    return [message.payload.split(b" ")[0] for message in received]


def test_a_client_that_drops_mid_hold_gets_the_held_messages_on_its_return(served):
    broker, endpoint = served
    client_id, subscriber = held_messages(broker, endpoint, "drop")
    subscriber.drop()
    back = connect(broker.port, client_id, version=4, clean_start=False)
    got = back.expect(3, timeout=HOLD_S * 4)
    assert names(got) == [b"held-1", b"held-2", b"held-3"]
    back.close()


def test_held_messages_survive_a_killed_broker(served):
    broker, endpoint = served
    client_id, subscriber = held_messages(broker, endpoint, "kill")
    broker.kill9()
    subscriber.drop()
    broker.restart()
    back = connect(broker.port, client_id, version=4, clean_start=False)
    got = back.expect(3, timeout=HOLD_S * 4)
    assert names(got) == [b"held-1", b"held-2", b"held-3"]
    back.close()
