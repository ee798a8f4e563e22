"""The Router's decisions without sockets: who gets a message, at which QoS,
with which subscription identifiers, and what goes to other workers."""

from actormq.actors.messages import Message, SubOptions
from actormq.actors.router import Router


class RecordingSession:
    def __init__(self, online: bool = True) -> None:
        self.online = online
        self.got = []

    def deliver(self, message, qos, retain, sub_ids, encoded) -> None:
        self.got.append((message.topic_name, qos, retain, sub_ids))


def make_router(*client_ids, online=True):
    sessions = {cid: RecordingSession(online) for cid in client_ids}
    sent = []
    changes = []
    router = Router(0, sessions, lambda w, m, t: sent.append((w, m.topic_name, t)),
                    lambda f, d: changes.append((f, d)))
    return router, sessions, sent, changes


def msg(topic, qos=2, retain=False, origin="pub"):
    return Message(topic, b"x", qos, retain, {}, None, 0.0, origin)


def test_granted_qos_is_the_minimum_of_message_and_subscription():
    router, sessions, _, _ = make_router("a")
    router.subscribe("a", "t/#", SubOptions(qos=1))
    router.route(msg("t/1", qos=2))
    router.route(msg("t/1", qos=0))
    assert [g[1] for g in sessions["a"].got] == [1, 0]


def test_overlapping_subscriptions_deliver_once_with_highest_qos_and_all_ids_MQTT_3_3_5_1():
    router, sessions, _, _ = make_router("a")
    router.subscribe("a", "t/#", SubOptions(qos=0, subscription_identifier=7))
    router.subscribe("a", "t/+", SubOptions(qos=2, subscription_identifier=9))
    router.route(msg("t/x", qos=2))
    assert len(sessions["a"].got) == 1
    _topic, qos, _retain, sub_ids = sessions["a"].got[0]
    assert qos == 2 and sorted(sub_ids) == [7, 9]


def test_no_local_skips_the_publisher_only():
    router, sessions, _, _ = make_router("a", "b")
    router.subscribe("a", "t", SubOptions(qos=1, no_local=True))
    router.subscribe("b", "t", SubOptions(qos=1, no_local=True))
    router.route(msg("t", origin="a"))
    assert sessions["a"].got == [] and len(sessions["b"].got) == 1


def test_retain_flag_forwarded_only_with_retain_as_published():
    router, sessions, _, _ = make_router("a", "b")
    router.subscribe("a", "t", SubOptions(qos=0, retain_as_published=True))
    router.subscribe("b", "t", SubOptions(qos=0))
    router.route(msg("t", retain=True))
    assert sessions["a"].got[0][2] is True and sessions["b"].got[0][2] is False


def test_shared_group_gets_each_message_exactly_once_round_robin():
    router, sessions, _, _ = make_router("a", "b")
    router.subscribe("a", "t", SubOptions(qos=1, share_group="g"))
    router.subscribe("b", "t", SubOptions(qos=1, share_group="g"))
    for _ in range(10):
        router.route(msg("t"))
    assert len(sessions["a"].got) + len(sessions["b"].got) == 10
    assert sessions["a"].got and sessions["b"].got


def test_shared_group_prefers_online_members():
    router, sessions, _, _ = make_router("a", "b")
    sessions["b"].online = False
    router.subscribe("a", "t", SubOptions(share_group="g"))
    router.subscribe("b", "t", SubOptions(share_group="g"))
    for _ in range(4):
        router.route(msg("t"))
    assert len(sessions["a"].got) == 4 and sessions["b"].got == []


def test_one_frame_per_remote_worker_and_none_without_a_match():
    router, _sessions, sent, _ = make_router()
    router.add_remote_route(1, "t/#")
    router.add_remote_route(1, "t/+")
    router.add_remote_route(2, "other")
    router.route(msg("t/x"))
    assert sent == [(1, "t/x", None)]
    router.route(msg("nobody/listens"))
    assert sent == [(1, "t/x", None)]


def test_messages_from_peers_are_not_forwarded_again():
    router, sessions, sent, _ = make_router("a")
    router.subscribe("a", "t", SubOptions())
    router.add_remote_route(1, "t")
    router.route(msg("t"), from_peer=True)
    assert sent == [] and len(sessions["a"].got) == 1


def test_remote_shared_group_member_is_chosen_among_all_workers():
    router, sessions, sent, _ = make_router("a")
    router.subscribe("a", "t", SubOptions(share_group="g"))
    router.add_remote_route(1, "$share/g/t")
    for _ in range(10):
        router.route(msg("t"))
    remote = [s for s in sent if s[2] == ("g", "t")]
    assert len(remote) + len(sessions["a"].got) == 10 and remote and sessions["a"].got


def test_route_deltas_are_reported_and_removed_routes_stop_matching():
    router, sessions, sent, changes = make_router("a")
    router.subscribe("a", "t", SubOptions())
    router.subscribe("a", "t", SubOptions(qos=1))        # replace: no second delta
    router.subscribe("a", "s", SubOptions(share_group="g"))
    assert changes == [("t", 1), ("$share/g/s", 1)]
    assert router.unsubscribe("a", "t") and not router.unsubscribe("a", "t")
    assert changes[-1] == ("t", -1)
    router.route(msg("t"))
    assert sessions["a"].got == []
    router.add_remote_route(3, "x")
    router.drop_worker_routes(3)
    router.route(msg("x"))
    assert sent == []
