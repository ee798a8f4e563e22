"""Shared subscriptions ($share/group/filter): each message goes to one member,
a member that leaves gets no more, and normal subscribers still get everything."""

import pytest

from tests.integration.clients import connect, unique

pytestmark = pytest.mark.timeout(60)
COUNT = 40


def _members(port, group, topic, n=2):
    members = [connect(port, unique(f"member{i}")) for i in range(n)]
    for member in members:
        assert member.subscribe(f"$share/{group}/{topic}", 1) == [1]
    return members


def _publish(port, topic, count=COUNT):
    publisher = connect(port, unique("pub"))
    for i in range(count):
        publisher.publish(topic, str(i).encode(), qos=1)


def _payloads(client):
    return [int(m.payload) for m in client.drain(quiet=0.5)]


def test_each_message_goes_to_exactly_one_member(shared_broker):
    topic = unique("s")
    first, second = _members(shared_broker.port, unique("g"), topic)
    _publish(shared_broker.port, topic)
    got_first, got_second = _payloads(first), _payloads(second)
    assert sorted(got_first + got_second) == list(range(COUNT)), "lost or duplicated messages"
    assert got_first and got_second, f"one member got everything: {len(got_first)}/{len(got_second)}"


def test_member_that_disconnects_gets_no_more(shared_broker):
    topic = unique("s")
    staying, leaving = _members(shared_broker.port, unique("g"), topic)
    leaving.disconnect()
    _publish(shared_broker.port, topic, count=10)
    assert _payloads(staying) == list(range(10))
    assert leaving.messages.empty()


def test_shared_and_normal_subscribers_both_receive(shared_broker):
    topic = unique("s")
    [member] = _members(shared_broker.port, unique("g"), topic, n=1)
    normal = connect(shared_broker.port, unique("normal"))
    normal.subscribe(topic, 1)
    _publish(shared_broker.port, topic, count=5)
    assert _payloads(member) == list(range(5))
    assert _payloads(normal) == list(range(5))


def test_two_groups_each_get_every_message_once(shared_broker):
    topic = unique("s")
    group_a = _members(shared_broker.port, unique("ga"), topic)
    group_b = _members(shared_broker.port, unique("gb"), topic)
    _publish(shared_broker.port, topic, count=10)
    for group in (group_a, group_b):
        assert sorted(_payloads(group[0]) + _payloads(group[1])) == list(range(10))
