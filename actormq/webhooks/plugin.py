"""The VerneMQ webhooks as a plugin on the hook chains (built-in name ``webhooks``).

Each VerneMQ hook maps to one hook point; a 3.1.1 client fires the plain
hook, a 5.0 client the `_m5` one. Decisions (auth_on_register/publish/
subscribe, on_unsubscribe, on_auth_m5) ask the endpoints and answer the
chain: ok (with the modifiers the point takes), next, or an error whose
reason code is 0x87 Not authorized when the endpoint said error and 0x88
Server unavailable when it could not be asked (fail closed). on_deliver(_m5)
is asked as VerneMQ asks it: that subscriber's deliveries wait (in order)
for the answer, whose `topic`, `payload` (and, _m5, `properties`) modifiers
the delivered message carries; an error or an endpoint that is down
delivers it unchanged, as VerneMQ does. Everything else is a notification
sent in the background; while the sender has no credit, on_publish's events
are counted dropped by a stand-in, the hook not called (`actormq.hooks.standin`).
The plugin class is made per registration set
(`plugin_class`) so that only the points with a webhook are hooked: a point
without one costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from actormq.hooks.info import ClientInfo
from actormq.hooks.plugin import Plugin
from actormq.hooks.points import HookPoint
from actormq.hooks.results import NEXT, OK, Continue, Error, Ok, modified
from actormq.hooks.standin import StandIns
from actormq.webhooks import events
from actormq.webhooks.auth_cache import AuthCache
from actormq.webhooks.configured import vmq_webhooks
from actormq.webhooks.sender import SenderProcess, stop_notifiers, use_when_ready
from actormq.webhooks.specs import RegistrationStore, Webhook, from_config
from actormq.webhooks.vmq_answers import Answer
from actormq.webhooks.vmq_bodies import HOOKS
from actormq.webhooks.vmq_calls import VmqWebhooks

log = logging.getLogger("actormq.webhooks")

NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
CONTINUE_AUTHENTICATION = 0x18
STORE_CHECK_INTERVAL = 1.0

POINT_OF_HOOK: dict[str, HookPoint] = {
    "auth_on_register": HookPoint.CLIENT_AUTHENTICATE,
    "auth_on_publish": HookPoint.CLIENT_AUTHORIZE_PUBLISH,
    "auth_on_subscribe": HookPoint.CLIENT_AUTHORIZE_SUBSCRIBE,
    "on_register": HookPoint.CLIENT_CONNECTED,
    "on_publish": HookPoint.MESSAGE_PUBLISH,
    "on_subscribe": HookPoint.SESSION_SUBSCRIBED,
    "on_unsubscribe": HookPoint.CLIENT_UNSUBSCRIBE,
    "on_deliver": HookPoint.MESSAGE_DELIVER,
    "on_offline_message": HookPoint.MESSAGE_OFFLINE,
    "on_client_wakeup": HookPoint.CLIENT_WAKEUP,
    "on_client_offline": HookPoint.CLIENT_OFFLINE,
    "on_client_gone": HookPoint.CLIENT_GONE,
    "on_session_expired": HookPoint.SESSION_EXPIRED,
    "on_auth_m5": HookPoint.CLIENT_ENHANCED_AUTH,
}


def point_of(hook: str) -> HookPoint:
    return POINT_OF_HOOK[hook.removesuffix("_m5") if hook != "on_auth_m5" else hook]


def _hook(base: str, client: ClientInfo) -> str:
    return base + "_m5" if client.protocol_level == 5 else base


def _refused(answer: Answer) -> Error:
    return Error(SERVER_UNAVAILABLE if answer.unavailable else NOT_AUTHORIZED, answer.error)


def _register_ok(modifiers: dict[str, Any], allowed: frozenset[str]) -> Ok:
    """The modifiers actormq carries out at CONNECT; VerneMQ's others are checked, then ignored."""
    if not modifiers:
        return OK
    return Ok(**{name: value for name, value in modifiers.items() if name in allowed})


class VmqWebhooksPlugin(Plugin):
    """VerneMQ webhooks. Making one makes an instance of the subclass that hooks exactly the
    points of the registered webhooks (`plugin_class`)."""

    name = "webhooks"
    timeout = 60.0          # each webhook has its own response_timeout; this bounds the sum
    failure_policy = "deny"

    @classmethod
    def wanted(cls, config: Any) -> bool:
        return vmq_webhooks(config)

    def __new__(cls, settings=None, context=None):
        if cls is VmqWebhooksPlugin:
            config = context.config
            registered = config_webhooks(config) + RegistrationStore(config["storage.dir"]).load()
            cls = plugin_class({webhook.hook for webhook in registered})
        return super().__new__(cls)

    def __init__(self, settings=None, context=None) -> None:
        super().__init__(settings, context)
        config = self.context.config
        self.store = RegistrationStore(config["storage.dir"])
        self.configured = config_webhooks(config)
        self.pool_settings = (_pool_setting(config, "pool_max_connections"),
                              _pool_setting(config, "pool_timeout") / 1000)
        self.tls = _tls(config)
        self.queue_size = config["webhooks.queue_size"]
        self.sender_nice = config["webhooks.sender_nice"]
        self.sender_idle = config["webhooks.sender_idle"]
        self.sender_cpu_share = config["webhooks.sender_cpu_share"]
        # aiohttp is imported by a worker that runs webhooks, not by one that only
        # answers admin requests (`actormq webhooks show`)
        from actormq.webhooks.http import HttpPool, Notifier, client_ssl_context

        pool = HttpPool(*self.pool_settings, client_ssl_context(*self.tls))
        self.calls = VmqWebhooks(pool, Notifier(pool, self.queue_size),
                                 AuthCache(config["webhooks.cache.max_entries"]))
        self.sweep_interval = config["webhooks.cache.sweep_interval"]
        self._store_mtime: float | None = None
        self._task: asyncio.Task | None = None
        self._switch: asyncio.Task | None = None
        self._local_notifier = self.calls.notifier
        self.stand_ins = StandIns({HookPoint.MESSAGE_PUBLISH: _publish_dropped(self.calls.unsent)})
        self.reload_registrations()

    # -- registrations ---------------------------------------------------------------------

    def registrations(self) -> list[Webhook]:
        return self.configured + self.store.load()

    def reload_registrations(self) -> None:
        self.calls.set_webhooks(self.registrations())
        try:
            self._store_mtime = self.store.path.stat().st_mtime
        except FileNotFoundError:
            self._store_mtime = None

    async def start(self) -> None:
        for webhook in self.calls.webhooks():
            if webhook.hook.startswith("auth_on_"):
                log.warning("webhook %s on %s DECIDES: answering {\"result\": \"ok\"} grants access and "
                            "skips the auth providers after it; an observer must answer "
                            "{\"result\": \"next\"}", webhook.endpoint, webhook.hook)
            if webhook.hook.startswith("on_deliver"):
                log.warning("webhook %s on %s: every delivery to a subscriber waits for its answer "
                            "(as in VerneMQ)", webhook.endpoint, webhook.hook)
        self._task = asyncio.get_running_loop().create_task(self._housekeeping())
        if any(not HOOKS[webhook.hook].decides for webhook in self.registrations()):
            self._switch = use_when_ready(SenderProcess(self.queue_size, *self.pool_settings, tls=self.tls,
                                                        nice=self.sender_nice, idle=self.sender_idle,
                                                        cpu_share=self.sender_cpu_share),
                                          self._use_sender)

    def _use_sender(self, sender: SenderProcess) -> None:
        self.calls.use_notifier(sender)
        sender.on_spent = self.stand_ins.engage

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.calls.count_unsent()
        await stop_notifiers(self._switch, [self._local_notifier, self.calls.notifier], "webhook")
        await self.calls.pool.close()

    async def _housekeeping(self) -> None:
        """Sweep expired cache entries; pick up runtime registrations written to the store."""
        since_sweep = 0.0
        while True:
            await asyncio.sleep(STORE_CHECK_INTERVAL)
            since_sweep += STORE_CHECK_INTERVAL
            if since_sweep >= self.sweep_interval:
                since_sweep = 0.0
                self.calls.cache.sweep()
            try:
                mtime = self.store.path.stat().st_mtime
            except FileNotFoundError:
                mtime = None
            if mtime != self._store_mtime:
                self.reload_registrations()

    # -- what the hook methods share ---------------------------------------------------------

    def _decide(self, hook: str, event, conclude, key: tuple | None = None):
        """`conclude(answer)` of the endpoints' answer: at once when the auth cache answers,
        else a coroutine the chain awaits (the client waits, nobody else does). With `key`
        (see `VmqWebhooks.decide`) `event` may be a function that makes it on a miss."""
        answer = self.calls.decide(hook, event, key)
        if type(answer) is Answer:
            return conclude(answer)
        return _concluded(answer, conclude)

    def _notify(self, hook: str, event, key: str) -> None:
        self.calls.notify(hook, event, key)


async def _concluded(pending, conclude):
    return conclude(await pending)


def config_webhooks(config) -> list[Webhook]:
    return from_config(config)


def _pool_setting(config, name: str) -> int:
    vmq_key = "vmq_webhooks." + name
    return config[vmq_key] if config.source(vmq_key) != "default" else config["webhooks." + name]


def _tls(config) -> tuple[str, str, str, bool]:
    def setting(name: str):
        vmq_key = "vmq_webhooks." + name
        return config[vmq_key] if config.source(vmq_key) != "default" else config["webhooks.tls." + name]
    return (setting("cafile"), setting("certfile"), setting("keyfile"), setting("verify_peer"))


# ---- the hook methods, one per point; `plugin_class` picks the ones it needs ------------------

def _refusal_or_next(answer: Answer):
    return NEXT if answer.result == "next" else _refused(answer)


_REGISTER_MODIFIERS = HookPoint.CLIENT_AUTHENTICATE.modifiers


def _register_decision(answer: Answer):
    if answer.result == "ok":
        modifiers = answer.modifiers
        return _register_ok(modifiers, _REGISTER_MODIFIERS) if modifiers else OK
    return _refusal_or_next(answer)


def on_client_authenticate(self, client: ClientInfo):
    hook = "auth_on_register_m5" if client.protocol_level == 5 else "auth_on_register"
    key = events.register_key(client)
    hit = self.calls.cached.get(hook)       # the hook has one endpoint: its cache, asked at once
    cached = hit(key) if hit is not None else None
    if cached is not None:      # a known client: one lookup, and a plain ok is the shared OK
        return OK if cached.result == "ok" and not cached.modifiers else _register_decision(cached)
    return self._decide(hook, lambda: events.vmq_client(client), _register_decision, key)


def on_client_enhanced_auth(self, client: ClientInfo, exchange):
    properties = {"authentication_method": exchange.method}
    if exchange.data is not None:
        properties["authentication_data"] = exchange.data

    def conclude(answer: Answer):
        if not answer.ok:
            return _refusal_or_next(answer)
        data = answer.modifiers.get("properties", {}).get("authentication_data", b"")
        if answer.modifiers.get("reason_code", 0) == CONTINUE_AUTHENTICATION:
            return Continue(data)
        return Ok(auth_data=data) if data else Ok()
    return self._decide("on_auth_m5", dict(events.vmq_client(client), properties=properties), conclude)


def on_client_authorize_publish(self, client: ClientInfo, message):
    def conclude(answer: Answer):
        if not answer.ok:
            return _refusal_or_next(answer)
        modifiers = dict(answer.modifiers)
        if "topic" in modifiers:
            modifiers["topic_name"] = modifiers.pop("topic")
        if "properties" in modifiers:
            modifiers["properties"] = dict(message.properties, **modifiers["properties"])
        allowed = HookPoint.CLIENT_AUTHORIZE_PUBLISH.modifiers
        return Ok(**{name: value for name, value in modifiers.items() if name in allowed})
    return self._decide(_hook("auth_on_publish", client),
                        events.vmq_message(events.vmq_client(client), message), conclude)


def on_client_authorize_subscribe(self, client: ClientInfo, topic_filter: str, options):
    def conclude(answer: Answer):
        if not answer.ok:
            return _refusal_or_next(answer)
        topics = answer.modifiers.get("topics")
        if not topics:
            return Ok()
        new_filter, qos = topics[0][0], topics[0][1]
        if qos >= 0x80:
            return Error(qos, f"rejected by webhook (QoS {qos})")
        return Ok(topic_filter=new_filter, qos=qos) if new_filter != topic_filter else Ok(qos=qos)
    event = events.vmq_subscription(events.vmq_client(client), topic_filter, options,
                                    client.protocol_level == 5)
    return self._decide(_hook("auth_on_subscribe", client), event, conclude)


def on_client_unsubscribe(self, client: ClientInfo, topic_filter: str):
    def conclude(answer: Answer):
        if not answer.ok:
            return _refusal_or_next(answer)
        topics = answer.modifiers.get("topics")
        return Ok(topic_filter=topics[0]) if topics and topics[0] != topic_filter else Ok()
    event = dict(events.vmq_client(client), topics=[topic_filter], properties={})
    return self._decide(_hook("on_unsubscribe", client), event, conclude)


def on_client_connected(self, client: ClientInfo):
    self._notify(_hook("on_register", client), lambda: events.vmq_client(client), client.client_id)


def on_message_publish(self, client: ClientInfo, message):
    calls = self.calls
    if calls.notifier.credit <= 0:      # the sender is behind: counted, nothing made
        calls.unsent[client.protocol_level] += 1
        return
    calls.notify_fields("on_publish_m5" if client.protocol_level == 5 else "on_publish",
                        events.message_event, events.message_fields(client, message), client.client_id)


def _publish_dropped(unsent: list[int]):
    """What stands in for `on_message_publish` while the sender has no credit: the event
    counted as the hook counts it then, by the publisher's protocol level."""
    def on_publish_dropped(client: ClientInfo, message):
        unsent[client.protocol_level] += 1
        return message
    return on_publish_dropped


def on_session_subscribed(self, client: ClientInfo, topic_filter: str, options):
    mqtt5 = client.protocol_level == 5
    self._notify(_hook("on_subscribe", client),
                 lambda: events.vmq_subscription(events.vmq_client(client), topic_filter, options, mqtt5),
                 client.client_id)


def on_message_deliver(self, client_id: str, message):
    """VerneMQ's on_deliver (on_deliver_m5 for a message with MQTT 5 properties when one is
    registered; the hook arguments do not say the subscriber's protocol version)."""
    hooks = self.calls.hooks()
    hook = ("on_deliver_m5" if "on_deliver_m5" in hooks and (message.properties or "on_deliver" not in hooks)
            else "on_deliver")

    def conclude(answer: Answer):
        if not answer.ok or not answer.modifiers:
            return None             # unchanged; an error too (VerneMQ delivers it as it is)
        changes = dict(answer.modifiers)
        if "topic" in changes:
            changes["topic_name"] = changes.pop("topic")
        if "properties" in changes:
            changes["properties"] = dict(message.properties, **changes["properties"])
        return modified(message, **changes)
    return self._decide(hook, events.vmq_message(events.vmq_session(client_id), message), conclude)


def on_message_offline(self, client_id: str, message):
    self._notify("on_offline_message", lambda: events.vmq_message(events.vmq_session(client_id), message),
                 client_id)


def on_client_wakeup(self, client: ClientInfo):
    self._notify("on_client_wakeup", events.vmq_session(client.client_id, client.mountpoint), client.client_id)


def on_client_offline(self, client: ClientInfo):
    self._notify("on_client_offline", events.vmq_session(client.client_id, client.mountpoint), client.client_id)


def on_client_gone(self, client: ClientInfo):
    self._notify("on_client_gone", events.vmq_session(client.client_id, client.mountpoint), client.client_id)


def on_session_expired(self, client_id: str):
    self._notify("on_session_expired", events.vmq_session(client_id), client_id)


_METHODS = {function.__name__: function for function in (
    on_client_authenticate, on_client_enhanced_auth, on_client_authorize_publish,
    on_client_authorize_subscribe, on_client_unsubscribe, on_client_connected, on_message_publish,
    on_session_subscribed, on_message_deliver, on_message_offline, on_client_wakeup,
    on_client_offline, on_client_gone, on_session_expired)}


def plugin_class(hooks: set[str]) -> type[VmqWebhooksPlugin]:
    """The plugin class that hooks exactly the points of `hooks` (VerneMQ hook names)."""
    methods = {point_of(hook).method for hook in hooks}
    return type("VmqWebhooksPlugin", (VmqWebhooksPlugin,), {name: _METHODS[name] for name in sorted(methods)})
