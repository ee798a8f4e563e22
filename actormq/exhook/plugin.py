"""EMQX 4 ExHook as a plugin on the hook chains (built-in name ``exhook``): actormq is the
gRPC client of the `HookProvider` servers of `exhook.server.<name>.url`.

At start each server is asked `OnProviderLoaded` (blocking, bounded by
`exhook.request_timeout`, before clients are served); the plugin class then
hooks only the points of the hooks the servers loaded — or every ExHook
point when a server is down at start, so that its hooks work once it is
back (`exhook.auto_reconnect`). Only the hooks a server loaded, and for
message hooks only topics matching its filters, are sent to it.

Decisions: `client.authenticate` and `client.check_acl` (publish and
subscribe authorization) take the server's `ValuedResponse`: IGNORE is
next; CONTINUE or STOP_AND_RETURN with `bool_result` true allows and false
refuses (0x87; CONTINUE decides too: actormq's decide chains have no
tentative answers — put exhook last in `plugins.order` to let other
providers decide first). `message.publish` folds: a returned message
rewrites topic, QoS and payload; header `allow_publish = "false"` drops it.
A server that cannot be asked within the timeout: `exhook.request_failed_action`
(deny: 0x88 at CONNECT, 0x87 otherwise, the message dropped; ignore: next).
Everything else is a notification sent in the background (bounded lanes,
dropped and counted while the server is down); `message.delivered` too,
since delivery never waits.
"""

from __future__ import annotations

import logging
from typing import Any

from actormq.exhook import configured, convert
from actormq.exhook import exhook_pb2 as pb
from actormq.exhook.server import ExhookServer, ServerDown, TlsFiles
from actormq.hooks.info import ClientInfo
from actormq.hooks.plugin import Plugin
from actormq.hooks.points import HookPoint
from actormq.hooks.results import DROP, NEXT, OK, Error, modified
from actormq.webhooks.lanes import Lanes

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
        try:
            servers.append(ExhookServer(name, section[f"{name}.url"], float(config["exhook.request_timeout"]),
                                        reconnect, tls, config["node.name"]))
        except ValueError as err:
            raise ConfigError(str(err), key=f"exhook.server.{name}.url") from None
    return servers


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
        self.lanes = Lanes(self._deliver, config["exhook.queue_size"])
        self.failures = 0

    async def start(self) -> None:
        for server in self.servers:
            await server.start()

    async def stop(self) -> None:
        await self.lanes.drain(1.0)
        await self.lanes.close()
        for server in self.servers:
            await server.stop()

    # -- sending -------------------------------------------------------------------------

    def _notify(self, hook: str, method: str, build, key: str, topic: str | None = None) -> None:
        for server in self.servers:
            if server.wants(hook, topic):
                if server.up:
                    self.lanes.put(server.name, (server, method, build), key)
                else:
                    self.lanes.drop(server.name)

    async def _deliver(self, target: str, item) -> bool:
        server, method, build = item
        try:
            await server.call(method, build(server.meta()))
        except ServerDown:
            return False
        return True

    async def _valued(self, hook: str, method: str, build, topic: str | None = None):
        """(server, ValuedResponse) of each server that wants `hook`, in order; None for a server
        that could not be asked (its answer is then request_failed_action's)."""
        for server in self.servers:
            if not server.wants(hook, topic):
                continue
            try:
                yield await server.call(method, build(server.meta()))
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

    def _client(self, client: ClientInfo) -> pb.ClientInfo:
        return convert.client_info(client, self.node)


# ---- hook methods; `plugin_class` picks the ones the servers want ---------------------------

async def on_client_authenticate(self, client: ClientInfo):
    return await self._decide_bool("client.authenticate", "OnClientAuthenticate", lambda meta: pb.ClientAuthenticateRequest(
        clientinfo=self._client(client), result=False, meta=meta), SERVER_UNAVAILABLE)


async def on_client_authorize_publish(self, client: ClientInfo, message):
    return await self._decide_bool("client.check_acl", "OnClientCheckAcl", lambda meta: pb.ClientCheckAclRequest(
        clientinfo=self._client(client), type=pb.ClientCheckAclRequest.PUBLISH, topic=message.topic_name,
        result=True, meta=meta), NOT_AUTHORIZED)


async def on_client_authorize_subscribe(self, client: ClientInfo, topic_filter: str, options):
    self._notify("client.subscribe", "OnClientSubscribe", lambda meta: pb.ClientSubscribeRequest(
        clientinfo=self._client(client), props=[], meta=meta,
        topic_filters=[pb.TopicFilter(name=topic_filter, qos=getattr(options, "qos", 0))]),
        client.client_id)
    return await self._decide_bool("client.check_acl", "OnClientCheckAcl", lambda meta: pb.ClientCheckAclRequest(
        clientinfo=self._client(client), type=pb.ClientCheckAclRequest.SUBSCRIBE, topic=topic_filter,
        result=True, meta=meta), NOT_AUTHORIZED)


def on_client_unsubscribe(self, client: ClientInfo, topic_filter: str):
    self._notify("client.unsubscribe", "OnClientUnsubscribe", lambda meta: pb.ClientUnsubscribeRequest(
        clientinfo=self._client(client), props=[], topic_filters=[pb.TopicFilter(name=topic_filter)],
        meta=meta), client.client_id)
    return NEXT


async def on_message_publish(self, client: ClientInfo, message):
    if message.topic_name.startswith("$SYS/"):
        return None
    result = message

    def build(meta):
        return pb.MessagePublishRequest(message=convert.message(result, self.node, client), meta=meta)

    async for response in self._valued("message.publish", "OnMessagePublish", build, message.topic_name):
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


def _client_notification(hook: str, method: str, request_type):
    def notify(self, client: ClientInfo | str, *rest):
        if isinstance(client, ClientInfo):
            info, client_id = self._client(client), client.client_id
        else:
            info, client_id = convert.session_client(client, self.node), client
        self._notify(hook, method, lambda meta: request_type(clientinfo=info, meta=meta), client_id)
    return notify


def on_client_connect(self, client: ClientInfo):
    self._notify("client.connect", "OnClientConnect", lambda meta: pb.ClientConnectRequest(
        conninfo=convert.conn_info(client, self.node), props=convert.properties(client.properties),
        meta=meta), client.client_id)


def on_client_connack(self, client: ClientInfo, reason_code: int):
    result = "success" if reason_code == 0 else f"0x{reason_code:02X}"
    self._notify("client.connack", "OnClientConnack", lambda meta: pb.ClientConnackRequest(
        conninfo=convert.conn_info(client, self.node), result_code=result, meta=meta), client.client_id)


def on_client_disconnected(self, client: ClientInfo, reason):
    self._notify("client.disconnected", "OnClientDisconnected", lambda meta: pb.ClientDisconnectedRequest(
        clientinfo=self._client(client), reason=str(getattr(reason, "value", reason) or "normal"),
        meta=meta), client.client_id)


def on_session_subscribed(self, client: ClientInfo, topic_filter: str, options):
    opts = pb.SubOpts(qos=getattr(options, "qos", 0), share=getattr(options, "share_group", None) or "",
                      rh=getattr(options, "retain_handling", 0), rap=int(getattr(options, "retain_as_published", 0)),
                      nl=int(getattr(options, "no_local", 0)))
    self._notify("session.subscribed", "OnSessionSubscribed", lambda meta: pb.SessionSubscribedRequest(
        clientinfo=self._client(client), topic=topic_filter, subopts=opts, meta=meta), client.client_id)


def on_session_unsubscribed(self, client: ClientInfo, topic_filter: str):
    self._notify("session.unsubscribed", "OnSessionUnsubscribed", lambda meta: pb.SessionUnsubscribedRequest(
        clientinfo=self._client(client), topic=topic_filter, meta=meta), client.client_id)


def on_session_terminated(self, client_id: str, reason):
    self._notify("session.terminated", "OnSessionTerminated", lambda meta: pb.SessionTerminatedRequest(
        clientinfo=convert.session_client(client_id, self.node), meta=meta,
        reason=str(getattr(reason, "value", reason) or "normal")), client_id)


def _message_notification(hook: str, method: str):
    def notify(self, client_id: str, message, reason=None):
        if message.topic_name.startswith("$SYS/"):
            return None
        if hook == "message.dropped":
            def build(meta):
                return pb.MessageDroppedRequest(message=convert.message(message, self.node), meta=meta,
                                                reason=str(getattr(reason, "value", reason)))
        else:
            request_type = pb.MessageDeliveredRequest if hook == "message.delivered" else pb.MessageAckedRequest

            def build(meta):
                return request_type(clientinfo=convert.session_client(client_id, self.node),
                                    message=convert.message(message, self.node), meta=meta)
        self._notify(hook, method, build, client_id or "", message.topic_name)
        return None
    return notify


_METHODS = {
    "on_client_connect": on_client_connect, "on_client_connack": on_client_connack,
    "on_client_connected": _client_notification("client.connected", "OnClientConnected",
                                                pb.ClientConnectedRequest),
    "on_client_disconnected": on_client_disconnected, "on_client_authenticate": on_client_authenticate,
    "on_client_authorize_publish": on_client_authorize_publish,
    "on_client_authorize_subscribe": on_client_authorize_subscribe,
    "on_client_unsubscribe": on_client_unsubscribe,
    "on_session_created": _client_notification("session.created", "OnSessionCreated", pb.SessionCreatedRequest),
    "on_session_subscribed": on_session_subscribed, "on_session_unsubscribed": on_session_unsubscribed,
    "on_session_resumed": _client_notification("session.resumed", "OnSessionResumed", pb.SessionResumedRequest),
    "on_session_discarded": _client_notification("session.discarded", "OnSessionDiscarded",
                                                 pb.SessionDiscardedRequest),
    "on_session_taken_over": _client_notification("session.takeovered", "OnSessionTakeovered",
                                                  pb.SessionTakeoveredRequest),
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
