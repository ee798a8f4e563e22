"""A CONNECT answered from the auth cache, on a broker whose only webhooks are
auth_on_register and auth_on_register_m5 (one endpoint each: the shape whose
cached answer is found without asking the chain anything else): the answer
is used on the next CONNECT of the same client (the endpoint counts the
requests it got), its modifiers still apply, it expires at its max-age,
`no-store` and refusals are never cached, and a client answered from the
cache is a working client."""

from __future__ import annotations

import time

import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.webhook_endpoint import Endpoint, Scripted

pytestmark = pytest.mark.timeout(60)

SMALL = 200     # the max_message_size the endpoint gives user "limited"


def answer(hook: str, body: dict):
    """A VerneMQ user's auth service: the user name says how it answers."""
    username = body.get("username")
    if username == "bad":
        return Scripted({"result": {"error": "not_allowed"}}, headers={"Cache-Control": "max-age=60"})
    if username == "brief":
        return Scripted({"result": "ok"}, headers={"Cache-Control": "max-age=1"})
    if username == "nostore":
        return Scripted({"result": "ok"}, headers={"Cache-Control": "no-store, max-age=60"})
    if username == "limited":
        return Scripted({"result": "ok", "modifiers": {"max_message_size": SMALL}},
                        headers={"Cache-Control": "max-age=60"})
    return Scripted({"result": "ok"}, headers={"Cache-Control": "private, max-age=60"})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The endpoint, and a broker whose only webhooks ask it."""
    actormq_only("webhooks are actormq's")
    endpoint = Endpoint().start()
    endpoint.respond = answer
    broker = start_broker(tmp_path_factory.mktemp("cached"), settings={
        "webhooks.a.hook": "auth_on_register", "webhooks.a.endpoint": endpoint.url,
        "webhooks.b.hook": "auth_on_register_m5", "webhooks.b.endpoint": endpoint.url})
    yield broker, endpoint
    broker.stop()
    endpoint.stop()


def asked(endpoint, hook: str, client_id: str) -> int:
    return len([body for body in endpoint.bodies(hook) if body["client_id"] == client_id])


@pytest.mark.parametrize("version, hook", [(4, "auth_on_register"), (5, "auth_on_register_m5")])
def test_the_next_connects_of_a_client_are_answered_from_the_cache(served, version, hook):
    broker, endpoint = served
    client_id = unique("known")
    for _ in range(3):
        connect(broker.port, client_id, version=version, username="joe", password="pw").close()
    assert asked(endpoint, hook, client_id) == 1
    with connect(broker.port, client_id, version=version, username="joe", password="pw") as client:
        client.subscribe(f"cached/{client_id}", qos=1)          # a working client, not just a CONNACK
        client.publish(f"cached/{client_id}", b"hello", qos=1)
        assert client.expect_one().payload == b"hello"
    assert asked(endpoint, hook, client_id) == 1


def test_a_cached_answer_expires_at_its_max_age(served):
    broker, endpoint = served
    client_id = unique("brief")
    for _ in range(2):
        connect(broker.port, client_id, version=4, username="brief", password="pw").close()
    assert asked(endpoint, "auth_on_register", client_id) == 1
    time.sleep(1.2)
    connect(broker.port, client_id, version=4, username="brief", password="pw").close()
    assert asked(endpoint, "auth_on_register", client_id) == 2


def test_no_store_and_refusals_are_asked_every_time(served):
    broker, endpoint = served
    stored, refused = unique("nostore"), unique("bad")
    for _ in range(2):
        connect(broker.port, stored, version=4, username="nostore", password="pw").close()
        client = connect(broker.port, refused, version=4, username="bad", password="pw", check=False)
        assert client.connack.reason_code == 5      # 3.1.1: not authorized
        client.close()
    assert asked(endpoint, "auth_on_register", stored) == 2
    assert asked(endpoint, "auth_on_register", refused) == 2


def test_the_modifiers_of_a_cached_answer_still_apply(served):
    broker, endpoint = served
    client_id = unique("limited")
    for _ in range(2):
        client = connect(broker.port, client_id, version=5, username="limited", password="pw")
        client.subscribe(f"limited/{client_id}")
        client.publish(f"limited/{client_id}", b"x" * (SMALL // 2))
        assert client.expect_one().payload == b"x" * (SMALL // 2)
        client.publish(f"limited/{client_id}", b"x" * (SMALL * 2))
        assert client.wait_closed(), "a packet over the answer's max_message_size was taken"
        client.close()
    assert asked(endpoint, "auth_on_register_m5", client_id) == 1
