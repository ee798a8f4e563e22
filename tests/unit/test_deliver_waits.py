"""A ``message.deliver`` hook that answers later (as VerneMQ's on_deliver webhook does): that
subscriber's deliveries wait for it, in order, and carry what it answered; another subscriber
does not wait; a hook that fails drops only its own message."""

from __future__ import annotations

import asyncio

from actormq.hooks import DROP, Plugin
from actormq.hooks.results import modified
from actormq.transport.codec import Connect, Publish, Subscribe, Subscription
from tests.unit.core_harness import Core


class Later(Plugin):
    """Answers deliveries to "waiter" with a Future the test resolves; others at once."""

    name = "later"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pending = []

    def on_message_deliver(self, client_id, message):
        if client_id != "waiter" or message.payload == b"now":
            return None
        future = self.core_loop.create_future()
        self.pending.append((future, message))
        return future


def publishes(client) -> list[tuple[str, bytes]]:
    return [(packet.topic_name, packet.payload) for packet in client.received() if isinstance(packet, Publish)]


def test_deliveries_wait_in_order_for_a_late_answer():
    core = Core()
    asyncio.set_event_loop(core.loop)       # the chain starts the hook's wait on the current loop
    plugin = Later()
    plugin.core_loop = core.loop
    core.broker.hooks.add(plugin)
    waiter, other, publisher = core.client(), core.client(), core.client()
    waiter.connect("waiter")
    other.connect("other")
    publisher.connect("pub")
    waiter.send(Subscribe(1, (Subscription("d/#", 0),)))
    other.send(Subscribe(1, (Subscription("d/#", 0),)))
    waiter.received()
    other.received()
    for payload in (b"first", b"now", b"second", b"third"):
        publisher.send(Publish("d/x", payload, 0))
    assert publishes(other) == [("d/x", b"first"), ("d/x", b"now"), ("d/x", b"second"), ("d/x", b"third")]
    assert publishes(waiter) == []                     # "now" answers at once, yet waits behind "first"
    (first, first_message), = plugin.pending
    first.set_result(modified(first_message, topic_name="d/changed", payload=b"FIRST"))
    core.settle(0.05)
    assert publishes(waiter) == [("d/changed", b"FIRST"), ("d/x", b"now")]   # "second" waits now
    second, third = plugin.pending[1], None
    second[0].set_result(DROP)                         # dropped by its hook: the next one goes on
    core.settle(0.05)
    third, third_message = plugin.pending[2]
    third.set_exception(RuntimeError("hook failed"))
    core.settle(0.05)
    assert publishes(waiter) == []
    publisher.send(Publish("d/x", b"now", 0))
    assert publishes(waiter) == [("d/x", b"now")]     # nothing held any more
    asyncio.set_event_loop(None)
    core.close()


def test_an_offline_session_stores_the_message_without_waiting():
    core = Core()
    asyncio.set_event_loop(core.loop)
    plugin = Later()
    plugin.core_loop = core.loop
    core.broker.hooks.add(plugin)
    waiter, publisher = core.client(), core.client()
    waiter.send(Connect("waiter", protocol_level=5, clean_start=False,
                        properties={"session_expiry_interval": 300}))
    waiter.send(Subscribe(1, (Subscription("d/#", 1),)))
    waiter.drop()
    publisher.connect("pub")
    publisher.send(Publish("d/x", b"stored", 1, packet_id=7))
    core.settle(0.05)
    assert len(plugin.pending) == 1                     # asked, but its answer is not waited for
    again = core.client()
    again.send(Connect("waiter", protocol_level=5, clean_start=False,
                       properties={"session_expiry_interval": 300}))
    core.settle(0.05)
    assert publishes(again) == [("d/x", b"stored")]
    asyncio.set_event_loop(None)
    core.close()
