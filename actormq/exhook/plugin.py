"""EMQX 4 ExHook as a plugin on the hook chains (built-in name ``exhook``): actormq is the
gRPC client of the `HookProvider` servers of `exhook.server.<name>.url`.

At start each server is asked `OnProviderLoaded` (blocking, bounded by
`exhook.request_timeout`, before clients are served); the plugin class then
hooks only the points of the hooks the servers loaded — or every ExHook
point when a server is down at start, so that its hooks work once it is
back (`exhook.auto_reconnect`). Only the hooks a server loaded, and for
message hooks only topics matching its filters, are sent to it. Until a
server down at start has loaded, it counts as wanting every hook: its
decisions (client.authenticate, client.check_acl, message.publish) follow
`exhook.request_failed_action` at once and its notifications are dropped
and counted, as for a server that went down later.

Decisions: `client.authenticate` and `client.check_acl` (publish and
subscribe authorization) take the server's `ValuedResponse`: IGNORE is
next; CONTINUE or STOP_AND_RETURN with `bool_result` true allows and false
refuses (0x87; CONTINUE decides too: actormq's decide chains have no
tentative answers — put exhook last in `plugins.order` to let other
providers decide first). `message.publish` folds: a returned message
rewrites topic, QoS and payload; header `allow_publish = "false"` drops it.
That costs each message a round trip; a server with
`exhook.server.<name>.message_publish = notify` (an actormq option) gets
`message.publish` as a notification instead: nothing waits for it, its
answer is ignored and the message goes on unchanged (audit, bridges).
A server that cannot be asked within the timeout: `exhook.request_failed_action`
(deny: 0x88 at CONNECT, 0x87 otherwise, the message dropped; ignore: next).
Everything else is a notification, sent by the notification sender process
(`actormq.exhook.sender`; bounded, dropped and counted when it falls behind
or while the server is down); `message.delivered` too, since delivery never
waits. While the sender has no credit, the chains count the `message.delivered`
events (and `message.publish` ones, when no server decides them) by stand-ins,
without calling the hooks (`actormq.hooks.standin`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from actormq.exhook import configured, convert
from actormq.exhook import exhook_pb2 as pb
from actormq.exhook.sender import ExhookSender, LocalSender
from actormq.exhook.server import ExhookServer, ServerDown, TlsFiles
from actormq.hooks.info import ClientInfo
from actormq.hooks.plugin import Plugin
from actormq.hooks.points import HookPoint
from actormq.hooks.results import DROP, NEXT, OK, Error, modified
from actormq.hooks.standin import StandIns
from actormq.webhooks.sender import stop_notifiers, use_when_ready

log = logging.getLogger("actormq.exhook")

NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
_TYPES = pb.ValuedResponse.ResponsedType

METHOD_OF_HOOK: dict[str, str] = {
    "client.connect": "on_client_connect", "client.connack": "on_client_connack",
    "client.connected": "on_client_connected", "client.disconnected": "on_client_disconnected",
    "client.authenticate": "on_client_authenticate",
    "client.check_acl": "on_client_authorize_publish on_client_authorize_subscribe",
    "client.subscribe": "on_client_authorize_subscribe", "client.unsubscribe": "on_client_unsubscribe",
    "session.created": "on_session_created", "session.subscribed": "on_session_subscribed",
    "session.unsubscribed": "on_session_unsubscribed", "session.resumed": "on_session_resumed",
    "session.discarded": "on_session_discarded", "session.takeovered": "on_session_taken_over",
    "session.terminated": "on_session_terminated", "message.publish": "on_message_publish",
    "message.delivered": "on_message_deliver", "message.acked": "on_message_acked",
    "message.dropped": "on_message_dropped",
}


def parse_auto_reconnect(text: str) -> float | None:
    """`exhook.auto_reconnect`: a duration (60s, 1m, plain seconds) or false; ValueError otherwise."""
    from actormq.conf.keytypes import Key, Kind
    word = text.strip().lower()
    if word in ("false", "off", "0"):
        return None
    return float(Key("exhook.auto_reconnect", Kind.DURATION, "60s", "").parse(word))


def servers_of(config) -> list[ExhookServer]:
    from actormq.errors import ConfigError
    try:
        reconnect = parse_auto_reconnect(config["exhook.auto_reconnect"])
    except ValueError as err:
        raise ConfigError(f"expected a duration or false: {err}", key="exhook.auto_reconnect") from None
    section = config.section("exhook.server.")
    servers = []
    for name in sorted({key.split(".", 1)[0] for key in section if key.endswith(".url")}):
        tls = TlsFiles(section.get(f"{name}.ssl.cacertfile", ""), section.get(f"{name}.ssl.certfile", ""),
                       section.get(f"{name}.ssl.keyfile", ""))
        publish_waits = section.get(f"{name}.message_publish", "decide") == "decide"
        try:
            servers.append(ExhookServer(name, section[f"{name}.url"], float(config["exhook.request_timeout"]),
                                        reconnect, tls, config["node.name"], publish_waits))
        except ValueError as err:
            raise ConfigError(str(err), key=f"exhook.server.{name}.url") from None
    return servers


class UnsentPlan:
    """Who a notification of `hook` dropped for want of credit counts for: the servers that
    want it whatever its topic are counted in one step per event (`dropped`, handed to each
    of them by `settle`); only servers with topic filters are asked per event. A plan lives as
    long as its plugin (a stand-in holds it): once settled it plans anew at the next event
    (`filtered` is then `_PLAN_AGAIN`, which sends that event to `count_filtered`), for a
    server that loads again may want other hooks and topics from then on."""

    __slots__ = ("hook", "servers", "everywhere", "filtered", "dropped")

    def __init__(self, hook: str, servers) -> None:
        self.hook = hook
        self.servers = servers
        self.dropped = 0
        self._plan()

    def _plan(self) -> None:
        hook, servers = self.hook, self.servers
        self.everywhere = [server for server in servers if not server.loaded or server.hooks.get(hook) == ()]
        self.filtered = [server for server in servers if server.loaded and server.hooks.get(hook)]

    def count_filtered(self, topic: str | None) -> None:
        if self.filtered is _PLAN_AGAIN:
            self._plan()
        for server in self.filtered:
            if server.wants(self.hook, topic):
                server.unsent += 1

    def settle(self) -> None:
        for server in self.everywhere:
            server.unsent += self.dropped
        self.dropped = 0
        self.filtered = _PLAN_AGAIN


_PLAN_AGAIN = ("plan again",)     # an UnsentPlan's `filtered` once settled: true, so the next event plans


class ExhookPlugin(Plugin):
    """ExHook. Making one loads the servers and makes an instance of the subclass that hooks
    the points they want (`plugin_class`)."""

    name = "exhook"
    timeout = 60.0          # each call has exhook.request_timeout; this bounds several servers

    @classmethod
    def wanted(cls, config: Any) -> bool:
        return configured.wanted(config)

    def __new__(cls, settings=None, context=None):
        servers = servers_of(context.config)
        if cls is ExhookPlugin:
            all_up = all([server.load_blocking() for server in servers])
            hooks = {hook for server in servers for hook in server.hooks} if all_up else set(METHOD_OF_HOOK)
            cls = plugin_class(hooks)
        instance = super().__new__(cls)
        instance.servers = servers
        return instance

    def __init__(self, settings=None, context=None) -> None:
        super().__init__(settings, context)
        config = self.context.config
        self.node = config["node.name"]
        self.deny_on_failure = config["exhook.request_failed_action"] == "deny"
        self.queue_size = config["exhook.queue_size"]
        self.sender_idle = config["exhook.sender_idle"]
        self.sender_cpu_share = config["exhook.sender_cpu_share"]
        self.notifier: ExhookSender | LocalSender = LocalSender(self.queue_size)
        self._local_notifier = self.notifier
        self._switch: asyncio.Task | None = None
        self.failures = 0
        self.publish_deciders = [server for server in self.servers if server.publish_waits]
        self.publish_notified = [server for server in self.servers if not server.publish_waits]
        self.track_unsent()

    async def start(self) -> None:
        for server in self.servers:
            await server.start()
        self._switch = use_when_ready(ExhookSender(self.servers, self.queue_size, self.sender_idle, self.sender_cpu_share),
                                      self._use_sender)

    def _use_sender(self, sender: ExhookSender) -> None:
        self.count_unsent()
        self.notifier = sender
        sender.on_spent = self.stand_ins.engage

    async def stop(self) -> None:
        self.count_unsent()
        await stop_notifiers(self._switch, [self._local_notifier, self.notifier], "exhook server")
        for server in self.servers:
            await server.stop()

    # -- sending -------------------------------------------------------------------------

    def _notify(self, hook: str, method: str, build, key: str, topic: str | None = None,
                servers=None) -> None:
        notifier = self.notifier
        if notifier.credit <= 0:
            self._unsent(hook, topic, servers)
            return
        for server in self.servers if servers is None else servers:
            if server.wants(hook, topic):
                if server.up and notifier.credit > 0:
                    notifier.put(server, method, build, key)
                else:
                    notifier.drop(server.name)

    def _unsent(self, hook: str, topic: str | None, servers=None) -> None:
        """The sender is behind: the event counts as dropped for every server that wants it
        (in one step here, `count_unsent` tells the notifier), and nothing is made of it."""
        plan = self.unsent_plans.get(hook) or self._plan(hook, servers)
        plan.dropped += 1
        if plan.filtered:
            plan.count_filtered(topic)

    def track_unsent(self) -> None:
        """Start counting drops by plan; a server that loads again settles them first. While
        the sender has no credit, the message notifications at fold points are counted by
        stand-ins (`actormq.hooks.standin`), their hooks not called; ``message.publish`` only
        when no server decides it."""
        self.unsent_plans: dict[str, UnsentPlan] = {}
        for server in self.servers:
            server.on_loaded.append(self.count_unsent)
        self.publish_dropped = self._dropped_message("message.publish", self.publish_notified)
        functions = {HookPoint.MESSAGE_DELIVER: self._dropped_message("message.delivered")}
        if not self.publish_deciders:
            functions[HookPoint.MESSAGE_PUBLISH] = self.publish_dropped
        self.stand_ins = StandIns(functions)

    def _dropped_message(self, hook: str, servers=None):
        """What stands in for the hook of message notification `hook` while the sender has no
        credit: the event counted, as `_unsent` counts it, for every server of `servers` (all:
        None) that wants it; a ``$SYS/`` topic is no event."""
        plan = self._plan(hook, servers)

        def dropped(who, message):
            topic = message.topic_name
            if topic[0] != "$" or not topic.startswith("$SYS/"):     # a topic name is never empty
                plan.dropped += 1
                if plan.filtered:
                    plan.count_filtered(topic)
            return message
        return dropped

    def _plan(self, hook: str, servers=None) -> UnsentPlan:
        plan = self.unsent_plans.get(hook)
        if plan is None:
            plan = self.unsent_plans[hook] = UnsentPlan(hook, self.servers if servers is None else servers)
        return plan

    def count_unsent(self) -> None:
        """Count the notifications `_unsent` dropped in the notifier's counters (and plan anew:
        a server that loads again may want other hooks and topics)."""
        for plan in self.unsent_plans.values():
            plan.settle()
        for server in self.servers:
            if server.unsent:
                self.notifier.dropped(server.name, server.unsent)
                server.unsent = 0

    async def _valued(self, hook: str, method: str, build, topic: str | None = None, servers=None):
        """(server, ValuedResponse) of each server that wants `hook`, in order; None for a server
        that could not be asked (its answer is then request_failed_action's)."""
        for server in self.servers if servers is None else servers:
            if not server.wants(hook, topic):
                continue
            try:
                yield await server.call(method, convert.request(method, build(), server.meta()))
            except ServerDown as down:
                self.failures += 1
                log.debug("%s", down)
                yield None

    async def _decide_bool(self, hook: str, method: str, build, failure_code: int):
        async for response in self._valued(hook, method, build):
            if response is None:
                if self.deny_on_failure:
                    return Error(failure_code, "exhook server not available")
                continue
            if response.type == _TYPES.IGNORE or response.WhichOneof("value") != "bool_result":
                continue
            return OK if response.bool_result else Error(NOT_AUTHORIZED, "denied by exhook server")
        return NEXT

    def _client(self, client: ClientInfo) -> convert.Fields:
        return convert.client_info(client, self.node)


# ---- hook methods; `plugin_class` picks the ones the servers want ---------------------------

async def on_client_authenticate(self, client: ClientInfo):
    return await self._decide_bool("client.authenticate", "OnClientAuthenticate", lambda: dict(
        clientinfo=self._client(client), result=False), SERVER_UNAVAILABLE)


async def on_client_authorize_publish(self, client: ClientInfo, message):
    return await self._decide_bool("client.check_acl", "OnClientCheckAcl", lambda: dict(
        clientinfo=self._client(client), type=pb.ClientCheckAclRequest.PUBLISH, topic=message.topic_name,
        result=True), NOT_AUTHORIZED)


async def on_client_authorize_subscribe(self, client: ClientInfo, topic_filter: str, options):
    self._notify("client.subscribe", "OnClientSubscribe", lambda: dict(
        clientinfo=self._client(client), props=[],
        topic_filters=[{"name": topic_filter, "qos": getattr(options, "qos", 0)}]), client.client_id)
    return await self._decide_bool("client.check_acl", "OnClientCheckAcl", lambda: dict(
        clientinfo=self._client(client), type=pb.ClientCheckAclRequest.SUBSCRIBE, topic=topic_filter,
        result=True), NOT_AUTHORIZED)


def on_client_unsubscribe(self, client: ClientInfo, topic_filter: str):
    self._notify("client.unsubscribe", "OnClientUnsubscribe", lambda: dict(
        clientinfo=self._client(client), props=[], topic_filters=[{"name": topic_filter}]), client.client_id)
    return NEXT


def on_message_publish(self, client: ClientInfo, message):
    """Notify the servers that take message.publish as a notification; the message waits only
    for the others (a coroutine the chain awaits). Without credit, when no server decides, the
    chain does not call this: the stand-in counts the event (`publish_dropped`)."""
    topic = message.topic_name
    if topic[0] == "$" and topic.startswith("$SYS/"):      # a topic name is never empty
        return None
    if self.publish_notified:
        if self.notifier.credit <= 0:       # the sender is behind: counted, nothing made
            self.publish_dropped(client, message)
        else:
            _publish_notified(self, client, message)
    if self.publish_deciders and _publish_wanted(self.publish_deciders, topic):
        return _publish_decided(self, client, message)
    return None


def _publish_wanted(servers, topic: str) -> bool:
    return any(server.wants("message.publish", topic) for server in servers)


def _publish_notified(self, client: ClientInfo, message) -> None:
    self._notify("message.publish", "OnMessagePublish", lambda: {
        "message": convert.message_record(message, client)}, client.client_id,
        message.topic_name, self.publish_notified)


async def _publish_decided(self, client: ClientInfo, message):
    result = message

    def build():
        return {"message": convert.message(result, self.node, client)}

    async for response in self._valued("message.publish", "OnMessagePublish", build, message.topic_name,
                                       self.publish_deciders):
        if response is None:
            if self.deny_on_failure:
                return DROP
            continue
        if response.type == _TYPES.IGNORE or response.WhichOneof("value") != "message":
            continue
        if convert.dropped(response.message):
            return DROP
        changes = convert.changes(response.message, result)
        if changes:
            result = modified(result, **changes)
        if response.type == _TYPES.STOP_AND_RETURN:
            break
    return result


def _client_notification(hook: str, method: str):
    def notify(self, client: ClientInfo | str, *rest):
        if isinstance(client, ClientInfo):
            info, client_id = self._client(client), client.client_id
        else:
            info, client_id = convert.session_client(client, self.node), client
        self._notify(hook, method, lambda: {"clientinfo": info}, client_id)
    return notify


def on_client_connect(self, client: ClientInfo):
    self._notify("client.connect", "OnClientConnect", lambda: dict(
        conninfo=convert.conn_info(client, self.node), props=convert.properties(client.properties)),
        client.client_id)


def on_client_connack(self, client: ClientInfo, reason_code: int):
    result = "success" if reason_code == 0 else f"0x{reason_code:02X}"
    self._notify("client.connack", "OnClientConnack", lambda: dict(
        conninfo=convert.conn_info(client, self.node), result_code=result), client.client_id)


def on_client_disconnected(self, client: ClientInfo, reason):
    self._notify("client.disconnected", "OnClientDisconnected", lambda: dict(
        clientinfo=self._client(client), reason=str(getattr(reason, "value", reason) or "normal")),
        client.client_id)


def on_session_subscribed(self, client: ClientInfo, topic_filter: str, options):
    opts = dict(qos=getattr(options, "qos", 0), share=getattr(options, "share_group", None) or "",
                rh=getattr(options, "retain_handling", 0), rap=int(getattr(options, "retain_as_published", 0)),
                nl=int(getattr(options, "no_local", 0)))
    self._notify("session.subscribed", "OnSessionSubscribed", lambda: dict(
        clientinfo=self._client(client), topic=topic_filter, subopts=opts), client.client_id)


def on_session_unsubscribed(self, client: ClientInfo, topic_filter: str):
    self._notify("session.unsubscribed", "OnSessionUnsubscribed", lambda: dict(
        clientinfo=self._client(client), topic=topic_filter), client.client_id)


def on_session_terminated(self, client_id: str, reason):
    self._notify("session.terminated", "OnSessionTerminated", lambda: dict(
        clientinfo=convert.session_client(client_id, self.node),
        reason=str(getattr(reason, "value", reason) or "normal")), client_id)


def _message_notification(hook: str, method: str):
    def notify(self, client_id: str, message, reason=None):
        topic = message.topic_name
        if topic[0] == "$" and topic.startswith("$SYS/"):      # a topic name is never empty
            return None
        if self.notifier.credit <= 0:       # the sender is behind: counted, nothing made
            self._unsent(hook, topic)
            return None
        return _message_notified(self, hook, method, client_id, message, reason)
    return notify


def _message_notified(self, hook: str, method: str, client_id: str, message, reason) -> None:
    if hook == "message.dropped":
        def build():
            return {"message": convert.message_record(message), "reason": str(getattr(reason, "value", reason))}
    else:
        def build():
            return {"clientinfo": convert.session_client(client_id, self.node),
                    "message": convert.message_record(message)}
    self._notify(hook, method, build, client_id or "", message.topic_name)


_METHODS = {
    "on_client_connect": on_client_connect, "on_client_connack": on_client_connack,
    "on_client_connected": _client_notification("client.connected", "OnClientConnected"),
    "on_client_disconnected": on_client_disconnected, "on_client_authenticate": on_client_authenticate,
    "on_client_authorize_publish": on_client_authorize_publish,
    "on_client_authorize_subscribe": on_client_authorize_subscribe,
    "on_client_unsubscribe": on_client_unsubscribe,
    "on_session_created": _client_notification("session.created", "OnSessionCreated"),
    "on_session_subscribed": on_session_subscribed, "on_session_unsubscribed": on_session_unsubscribed,
    "on_session_resumed": _client_notification("session.resumed", "OnSessionResumed"),
    "on_session_discarded": _client_notification("session.discarded", "OnSessionDiscarded"),
    "on_session_taken_over": _client_notification("session.takeovered", "OnSessionTakeovered"),
    "on_session_terminated": on_session_terminated, "on_message_publish": on_message_publish,
    "on_message_deliver": _message_notification("message.delivered", "OnMessageDelivered"),
    "on_message_acked": _message_notification("message.acked", "OnMessageAcked"),
    "on_message_dropped": _message_notification("message.dropped", "OnMessageDropped"),
}


def plugin_class(hooks: set[str]) -> type[ExhookPlugin]:
    """The plugin class hooking the points of `hooks` (ExHook hook names; unknown ones are logged)."""
    methods = set()
    for hook in hooks:
        if hook not in METHOD_OF_HOOK:
            log.warning("exhook: a server asked for hook %r, which EMQX 4 does not have; ignored", hook)
            continue
        methods.update(METHOD_OF_HOOK[hook].split())
    assert all(HookPoint.from_method(method) for method in methods)
    return type("ExhookPlugin", (ExhookPlugin,), {name: _METHODS[name] for name in sorted(methods)})
