"""The EMQX 4 web hook as a plugin on the hook chains (built-in name ``web_hook``).

Every event of a configured rule is POSTed to `web.hook.url` in the
background (bounded queues per client lane, drops counted): nothing here
ever delays a client. The class made for a config hooks only the points of
its rules (`plugin_class`). The two 4.x events that sit on decide points
(client.subscribe, client.unsubscribe) answer next; the ones on fold points
(message.publish, message.delivered) return the message unchanged; while the
sender has no credit, stand-ins count those two dropped without calling the
hooks (`actormq.hooks.standin`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from actormq.hooks.info import ClientInfo
from actormq.hooks.plugin import Plugin
from actormq.hooks.points import HookPoint
from actormq.hooks.results import NEXT
from actormq.hooks.standin import StandIns
from actormq.webhooks import events
from actormq.webhooks.configured import emqx_web_hook
from actormq.webhooks.emqx_webhook import WebHookConfig
from actormq.webhooks.http import HttpPool, Notifier, client_ssl_context
from actormq.webhooks.sender import SenderProcess, stop_notifiers, use_when_ready

POINT_OF_EVENT: dict[str, HookPoint] = {
    "client.connect": HookPoint.CLIENT_CONNECT,
    "client.connack": HookPoint.CLIENT_CONNACK,
    "client.connected": HookPoint.CLIENT_CONNECTED,
    "client.disconnected": HookPoint.CLIENT_DISCONNECTED,
    "client.subscribe": HookPoint.CLIENT_AUTHORIZE_SUBSCRIBE,
    "client.unsubscribe": HookPoint.CLIENT_UNSUBSCRIBE,
    "session.subscribed": HookPoint.SESSION_SUBSCRIBED,
    "session.unsubscribed": HookPoint.SESSION_UNSUBSCRIBED,
    "session.terminated": HookPoint.SESSION_TERMINATED,
    "message.publish": HookPoint.MESSAGE_PUBLISH,
    "message.delivered": HookPoint.MESSAGE_DELIVER,
    "message.acked": HookPoint.MESSAGE_ACKED,
    "message.dropped": HookPoint.MESSAGE_DROPPED,
}


def _text(value: Any) -> str:
    if value is None:
        return "normal"
    return getattr(value, "value", None) or str(value)


class EmqxWebHookPlugin(Plugin):
    """EMQX 4 web hook. Making one makes an instance of the subclass hooking its rules' points."""

    name = "web_hook"
    failure_policy = "ignore"

    @classmethod
    def wanted(cls, config: Any) -> bool:
        return emqx_web_hook(config)

    def __new__(cls, settings=None, context=None):
        if cls is EmqxWebHookPlugin:
            cls = plugin_class(WebHookConfig.from_config(context.config).events())
        return super().__new__(cls)

    def __init__(self, settings=None, context=None) -> None:
        super().__init__(settings, context)
        config = self.context.config
        self.web_hook = WebHookConfig.from_config(config)
        self.node = config["node.name"]
        self.tls = (config["web.hook.ssl.cacertfile"], config["web.hook.ssl.certfile"],
                    config["web.hook.ssl.keyfile"], config["web.hook.ssl.verify"])
        self.pool = HttpPool(config["web.hook.pool_size"], 60.0, client_ssl_context(*self.tls))
        self.notifier = Notifier(self.pool, config["webhooks.queue_size"], self.web_hook.timeout_s)
        self._local_notifier = self.notifier
        self._switch: asyncio.Task | None = None
        self.sender_nice = config["webhooks.sender_nice"]
        self.sender_idle = config["webhooks.sender_idle"]
        self.sender_cpu_share = config["webhooks.sender_cpu_share"]
        self.stand_ins = StandIns({HookPoint.MESSAGE_PUBLISH: self._dropped("message.publish"),
                                   HookPoint.MESSAGE_DELIVER: self._dropped("message.delivered")})

    async def start(self) -> None:
        self._switch = use_when_ready(SenderProcess(self.notifier.queue_size, self.pool.max_connections,
                                                    60.0, self.web_hook.timeout_s, self.tls,
                                                    self.sender_nice, self.sender_idle, self.sender_cpu_share),
                                      self._use_sender)

    def _use_sender(self, sender: SenderProcess) -> None:
        self.notifier = sender
        sender.on_spent = self.stand_ins.engage

    async def stop(self) -> None:
        await stop_notifiers(self._switch, [self._local_notifier, self.notifier], "web hook")
        await self.pool.close()

    def _send(self, event: str, data, client_id: str, topic: str | None = None) -> None:
        """Queue `event` if a rule wants it; `data()` makes its fields, only if it is sent."""
        web_hook = self.web_hook
        if web_hook.wants(event, topic):
            self.notifier.send(web_hook.url, web_hook.headers,
                               lambda: orjson.dumps(web_hook.body(event, data(), self.node)), client_id)

    def _dropped(self, event: str):
        """What stands in for the hook of message event `event` while the sender has no credit:
        the event counted dropped when a rule wants it, as `_send` counts it then."""
        web_hook = self.web_hook

        def dropped(who, message):
            if web_hook.wants(event, message.topic_name):
                self.notifier.drop(web_hook.url)
            return message
        return dropped


# ---- the hook methods, one per point; `plugin_class` picks the ones it needs ------------------

def on_client_connect(self, client: ClientInfo):
    self._send("client.connect", lambda: events.emqx_client(client), client.client_id)


def on_client_connack(self, client: ClientInfo, reason_code: int):
    conn_ack = "success" if reason_code == 0 else _text(reason_code)
    self._send("client.connack", lambda: events.emqx_client(client, conn_ack=conn_ack), client.client_id)


def on_client_connected(self, client: ClientInfo):
    self._send("client.connected", lambda: events.emqx_client(client, connected_at=int(time.time())),
               client.client_id)


def on_client_disconnected(self, client: ClientInfo, reason):
    self._send("client.disconnected", lambda: events.emqx_client(client, reason=_text(reason)),
               client.client_id)


def on_client_authorize_subscribe(self, client: ClientInfo, topic_filter: str, options):
    opts = {"qos": getattr(options, "qos", 0)}
    self._send("client.subscribe", lambda: events.emqx_client(client, topic=topic_filter, opts=opts),
               client.client_id, topic_filter)
    return NEXT


def on_client_unsubscribe(self, client: ClientInfo, topic_filter: str):
    self._send("client.unsubscribe", lambda: events.emqx_client(client, topic=topic_filter),
               client.client_id, topic_filter)
    return NEXT


def on_session_subscribed(self, client: ClientInfo, topic_filter: str, options):
    opts = {"qos": getattr(options, "qos", 0)}
    self._send("session.subscribed", lambda: events.emqx_client(client, topic=topic_filter, opts=opts),
               client.client_id, topic_filter)


def on_session_unsubscribed(self, client: ClientInfo, topic_filter: str):
    self._send("session.unsubscribed", lambda: events.emqx_client(client, topic=topic_filter),
               client.client_id, topic_filter)


def on_session_terminated(self, client_id: str, reason):
    self._send("session.terminated", lambda: {"clientid": client_id, "reason": _text(reason)}, client_id)


def on_message_publish(self, client: ClientInfo, message):
    self._send("message.publish", lambda: events.emqx_message(message, from_username=client.username),
               client.client_id, message.topic_name)


def on_message_deliver(self, client_id: str, message):
    self._send("message.delivered", lambda: events.emqx_message(message, clientid=client_id), client_id,
               message.topic_name)


def on_message_acked(self, client_id: str, message):
    self._send("message.acked", lambda: events.emqx_message(message, clientid=client_id), client_id,
               message.topic_name)


def on_message_dropped(self, client_id: str, message, reason):
    self._send("message.dropped", lambda: events.emqx_message(message, reason=_text(reason)),
               client_id or "", message.topic_name)


_METHODS = {function.__name__: function for function in (
    on_client_connect, on_client_connack, on_client_connected, on_client_disconnected,
    on_client_authorize_subscribe, on_client_unsubscribe, on_session_subscribed, on_session_unsubscribed,
    on_session_terminated, on_message_publish, on_message_deliver, on_message_acked, on_message_dropped)}


def plugin_class(event_names: set[str]) -> type[EmqxWebHookPlugin]:
    """The plugin class hooking exactly the points of `event_names` (EMQX 4 event names)."""
    methods = {POINT_OF_EVENT[event].method for event in event_names}
    return type("EmqxWebHookPlugin", (EmqxWebHookPlugin,), {name: _METHODS[name] for name in sorted(methods)})
