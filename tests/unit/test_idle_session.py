"""A clean client holds an IdleSession (its connection and will) until it uses a
session's state: a PINGREQ or DISCONNECT leaves it idle; a SUBSCRIBE, PUBLISH
or acknowledgement makes the Session, which takes its place in the broker's
session table and works as any (`core_harness`: the broker core in-process)."""

from __future__ import annotations

import pytest

from actormq.actors.idle_session import IdleSession
from actormq.actors.session import Session
from actormq.mgmt.worker_clients import list_clients, subscribe
from actormq.transport.codec import (Connect, Disconnect, Pingreq, Pingresp, Puback, Publish, Suback,
                                     Subscribe, Subscription, Will)
from tests.unit.core_harness import Core


@pytest.fixture
def core():
    started = Core()
    yield started
    started.close()


def _subscriber(core, topic_filter: str, client_id: str = "watcher"):
    watcher = core.client(4)
    watcher.connect(client_id)
    watcher.send(Subscribe(1, (Subscription(topic_filter, 1),)))
    assert watcher.received() == [Suback(1, (1,))]
    return watcher


def test_a_clean_client_is_idle_until_it_subscribes(core):
    client = core.client(4)
    client.connect("idle")
    idle = client.conn.session
    assert type(idle) is IdleSession and core.broker.sessions["idle"] is idle
    assert idle.online and not idle.persistent and idle.inflight_count() == 0 and len(idle.queue) == 0
    client.send(Pingreq())
    assert client.received() == [Pingresp()]
    assert client.conn.session is idle                  # a PINGREQ uses no session state

    client.send(Subscribe(1, (Subscription("t/#", 1),)))
    assert client.received() == [Suback(1, (1,))]
    made = client.conn.session
    assert type(made) is Session and core.broker.sessions["idle"] is made
    assert made.conn is client.conn and made.online and list(made.subscriptions) == ["t/#"]
    publisher = core.client(4)
    publisher.connect("pub")
    publisher.send(Publish("t/1", b"one", 1, packet_id=3))
    assert publisher.received() == [Puback(3)]
    [delivered] = client.received()
    assert (delivered.topic_name, delivered.payload, delivered.qos) == ("t/1", b"one", 1)
    client.send(Puback(delivered.packet_id))
    assert made.inflight_count() == 0


def test_a_publish_makes_the_session_and_is_routed(core):
    watcher = _subscriber(core, "p/#")
    client = core.client(5)
    client.connect("publisher")
    assert type(client.conn.session) is IdleSession
    client.send(Publish("p/1", b"first", 1, packet_id=9))
    assert client.received() == [Puback(9)]
    assert type(client.conn.session) is Session and core.broker.sessions["publisher"] is client.conn.session
    [delivered] = watcher.received()
    assert (delivered.topic_name, delivered.payload) == ("p/1", b"first")


def test_persistent_sessions_are_sessions_from_the_start(core):
    old = core.client(4)
    old.connect("kept", clean_start=False)
    assert type(old.conn.session) is Session
    new = core.client(5)
    new.connect("expires", properties={"session_expiry_interval": 60})
    assert type(new.conn.session) is Session
    ends = core.client(5)
    ends.connect("ends-with-it", clean_start=False)     # 5.0: expiry 0, nothing to resume
    assert type(ends.conn.session) is IdleSession


def test_an_idle_client_that_drops_leaves_its_will_and_ends(core):
    watcher = _subscriber(core, "will/#")
    client = core.client(4)
    assert not client.connect("mortal", will=Will("will/mortal", b"gone", 1)).session_present
    assert type(client.conn.session) is IdleSession
    client.drop()
    [will] = watcher.received()
    assert (will.topic_name, will.payload) == ("will/mortal", b"gone")
    assert "mortal" not in core.broker.sessions


def test_an_idle_client_that_disconnects_leaves_no_will(core):
    watcher = _subscriber(core, "will/#")
    client = core.client(4)
    client.connect("polite", will=Will("will/polite", b"gone", 1))
    client.send(Disconnect())
    client.drop()
    marker = core.client(4)
    marker.connect("marker")
    marker.send(Publish("will/marker", b"after", 1, packet_id=1))
    assert marker.received() == [Puback(1)]
    assert [p.payload for p in watcher.received()] == [b"after"]    # the will did not come first
    assert "polite" not in core.broker.sessions


def test_a_second_connect_takes_an_idle_session_over(core):
    first = core.client(5)
    first.connect("twice")
    second = core.client(5)
    connack = second.connect("twice")
    assert not connack.session_present
    [disconnect] = first.received()
    assert disconnect.reason_code == 0x8E           # session taken over
    first.drop()                                    # its socket closes after: ends nothing of the new one
    assert core.broker.sessions["twice"] is second.conn.session
    assert second.conn.session.conn is second.conn and second.conn.session.online


def test_a_new_connect_after_an_idle_client_left_has_no_session_present(core):
    gone = core.client(4)
    gone.connect("again")
    gone.drop()
    assert "again" not in core.broker.sessions
    back = core.client(4)
    assert not back.connect("again", clean_start=False).session_present
    assert type(back.conn.session) is Session


def test_an_ended_idle_session_says_so(core):
    client = core.client(4)
    client.connect("short")
    idle = client.conn.session
    client.drop()
    assert not idle.online and idle.client_id == ""
    with pytest.raises(RuntimeError):
        idle.in_use()


@pytest.mark.parametrize("version", (4, 5))
def test_the_connect_of_an_idle_client_keeps_its_fields_for_operators(core, version):
    client = core.client(version)
    client.send(Connect("fields", protocol_level=version, keepalive=30))
    client.received()
    idle = client.conn.session
    assert (idle.client_id, idle.version, idle.mountpoint, idle.expiry_interval) == ("fields", version, "", 0)
    assert idle.receive_maximum == 65535 and idle.max_inflight == core.broker.settings.max_inflight
    assert idle.disconnected_at is None and idle.inflight_items() == [] and not idle.subscriptions


def test_operators_list_an_idle_client_without_making_its_session_and_subscribe_it(core):
    client = core.client(4)
    client.connect("listed")
    idle = client.conn.session
    [row] = list_clients(core.broker, {"clientid": "listed"})
    assert (row["clientid"], row["connected"], row["inflight"], row["mqueue_len"]) == ("listed", True, 0, 0)
    assert client.conn.session is idle
    assert subscribe(core.broker, {"clientid": "listed", "topics": ["ops/#"], "qos": 1})[0]["clientid"] == "listed"
    made = client.conn.session
    assert type(made) is Session and list(made.subscriptions) == ["ops/#"]
    publisher = core.client(4)
    publisher.connect("ops-pub")
    publisher.send(Publish("ops/1", b"from ops", 0))
    [delivered] = client.received()
    assert (delivered.topic_name, delivered.payload) == ("ops/1", b"from ops")
