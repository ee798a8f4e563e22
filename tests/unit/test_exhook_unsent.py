"""ExHook notifications while the sender gives no credit: nothing is made, and each event
counts as dropped for every server that wants it (its hook and topic filters), once, when
the counters are read; with credit again the events are handed over."""

from __future__ import annotations

import asyncio

from actormq.actors.messages import Message
from actormq.exhook import exhook_pb2 as pb
from actormq.exhook.plugin import plugin_class
from actormq.exhook.sender import LocalSender
from actormq.exhook.server import ExhookServer
from actormq.hooks import ClientInfo


def _server(name: str, hooks: dict[str, tuple[str, ...]]) -> ExhookServer:
    server = ExhookServer(name, "http://127.0.0.1:9", 1.0, None, publish_waits=False)
    server.hooks, server.loaded, server.up = hooks, True, True
    return server


def _plugin(*servers: ExhookServer):
    plugin = object.__new__(plugin_class({"message.publish", "message.delivered"}))
    plugin.servers, plugin.node = list(servers), "node"
    plugin.publish_notified, plugin.publish_deciders = list(servers), []
    plugin.notifier = LocalSender(100)
    plugin.track_unsent()
    return plugin


def test_without_credit_drops_count_per_server_that_wants_the_event():
    filtered = _server("filtered", {"message.delivered": ("a/#",), "message.publish": ("a/#",)})
    everything = _server("everything", {"message.delivered": ()})
    plugin = _plugin(filtered, everything)
    plugin.notifier.credit = 0
    client = ClientInfo("c1")
    for topic in ("a/1", "a/2", "b/1", "$SYS/x"):
        plugin.on_message_deliver("c1", Message(topic, b"p", 0, False))
        plugin.on_message_publish(client, Message(topic, b"p", 0, False))
    assert plugin.notifier.lanes._queues == {}           # nothing was made or queued
    plugin.count_unsent()
    plugin.count_unsent()                                 # counted once
    counters = plugin.notifier.counters
    assert counters["filtered", "dropped"] == 4 and counters["everything", "dropped"] == 3

    async def with_credit():
        plugin.notifier.credit = 1
        plugin.on_message_deliver("c1", Message("a/3", b"p", 0, False))
        queued = {name: sum(queue.qsize() for queue in lanes)
                  for name, lanes in plugin.notifier.lanes._queues.items()}
        await plugin.notifier.close()
        return queued
    assert asyncio.run(with_credit()) == {"filtered": 1, "everything": 1}


def test_a_server_that_loads_again_counts_drops_by_what_it_wants_then():
    server = _server("s", {"message.publish": ()})
    plugin = _plugin(server)
    plugin.notifier.credit = 0
    client = ClientInfo("c1")
    for topic in ("a/1", "b/1"):
        plugin.on_message_publish(client, Message(topic, b"p", 0, False))
    server._loaded(pb.LoadedResponse(hooks=[pb.HookSpec(name="message.publish", topics=["a/#"])]))
    for topic in ("a/2", "b/2", "b/3"):
        plugin.on_message_publish(client, Message(topic, b"p", 0, False))
    server._loaded(pb.LoadedResponse(hooks=[]))
    plugin.on_message_publish(client, Message("a/3", b"p", 0, False))
    plugin.count_unsent()
    assert plugin.notifier.counters["s", "dropped"] == 3     # a/1 and b/1, then a/2, then none
