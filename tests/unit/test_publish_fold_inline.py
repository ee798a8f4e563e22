"""``message.publish`` alone is run by the Connection itself: a kept message is routed, a
changed one carries the change, DROP drops it, an answer that waits holds the client's later
PUBLISHes of the same read behind it, in order; QoS 2, a mountpoint or an authorization
chain take the general path with the same outcomes; every run is counted once."""

from __future__ import annotations

import asyncio

from actormq.hooks import DROP, NEXT, Plugin
from actormq.hooks.results import modified
from actormq.transport.codec import Publish, Pubrel, Subscribe, Subscription
from tests.unit.core_harness import Core


class Folds(Plugin):
    """Keeps "…keep/…", changes "…change/…", drops "…drop/…", answers "…wait/…" later."""

    name = "folds"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pending: list[tuple[asyncio.Future, object]] = []
        self.seen: list[str] = []

    def on_message_publish(self, client, message):
        topic = message.topic_name
        self.seen.append(topic)
        if "change/" in topic:
            return modified(message, payload=message.payload.upper())
        if "drop/" in topic:
            return DROP
        if "wait/" in topic:
            future = asyncio.get_event_loop().create_future()
            self.pending.append((future, message))
            return future
        return None


class Authorizes(Plugin):
    name = "authorizes"

    def on_client_authorize_publish(self, client, message):
        return NEXT


def _core(*plugins):
    core = Core()
    asyncio.set_event_loop(core.loop)
    for plugin in plugins:
        core.broker.hooks.add(plugin)
    subscriber, publisher = core.client(), core.client()
    subscriber.connect("sub")
    publisher.connect("pub")
    subscriber.send(Subscribe(1, (Subscription("#", 2),)))
    subscriber.received()
    return core, subscriber, publisher


def _publishes(client) -> list[tuple[str, bytes]]:
    return [(packet.topic_name, packet.payload) for packet in client.received() if isinstance(packet, Publish)]


def test_the_outcomes_of_one_read_in_order():
    plugin = Folds()
    core, subscriber, publisher = _core(plugin)
    assert core.broker.hooks.publish_folds is core.broker.hooks.message_publish
    publisher.send(Publish("keep/1", b"a", 0), Publish("change/1", b"b", 1, packet_id=1),
                   Publish("drop/1", b"c", 0), Publish("keep/2", b"d", 0))
    assert _publishes(subscriber) == [("keep/1", b"a"), ("change/1", b"B"), ("keep/2", b"d")]
    publisher.send(Publish("keep/3", b"e", 0), Publish("wait/1", b"f", 1, packet_id=2),
                   Publish("keep/4", b"g", 0), Publish("change/2", b"h", 0))
    assert _publishes(subscriber) == [("keep/3", b"e")]            # the rest waits behind wait/1
    assert plugin.seen[-3:] == ["wait/1", "keep/4", "change/2"]     # their folds ran meanwhile
    future, message = plugin.pending[0]
    future.set_result(modified(message, payload=b"F"))
    core.settle(0.01)
    assert _publishes(subscriber) == [("wait/1", b"F"), ("keep/4", b"g"), ("change/2", b"H")]
    publisher.send(Publish("keep/5", b"i", 0))
    assert _publishes(subscriber) == [("keep/5", b"i")]             # the inline path again
    hooks = core.broker.hooks
    hooks.settle()
    assert hooks.message_publish.providers[0].stats.calls == len(plugin.seen) == 9
    core.close()


def test_qos2_a_mountpoint_and_an_authorization_chain_take_the_general_path():
    plugin = Folds()
    core, subscriber, publisher = _core(Authorizes(), plugin)
    assert core.broker.hooks.publish_folds is None
    publisher.send(Publish("change/1", b"a", 0), Publish("drop/1", b"b", 0), Publish("keep/1", b"c", 0))
    assert _publishes(subscriber) == [("change/1", b"A"), ("keep/1", b"c")]
    core.broker.hooks.remove("authorizes")
    assert core.broker.hooks.publish_folds is core.broker.hooks.message_publish
    publisher.send(Publish("change/2", b"d", 2, packet_id=7),
                   Publish("change/2", b"d", 2, packet_id=7, dup=True))
    publisher.send(Pubrel(7))
    assert _publishes(subscriber) == [("change/2", b"D")]          # the duplicate is not a new message
    assert plugin.seen.count("change/2") == 1
    publisher.conn.mountpoint = "m/"
    publisher.send(Publish("change/3", b"e", 0), Publish("drop/3", b"f", 0), Publish("keep/3", b"g", 0))
    assert _publishes(subscriber) == [("m/change/3", b"E"), ("m/keep/3", b"g")]
    core.close()
