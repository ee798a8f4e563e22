"""The hook points: every place in a client's life where plugins are asked or told.

One enum, `HookPoint`, covers the lifecycle in the three vocabularies users
bring: VerneMQ (`auth_on_register`, `on_publish`, ...), EMQX
(`client.authenticate`, `message.publish`, ...) and Gmqtt (`OnBasicAuth`,
`OnMsgArrived`, ...). Each point has:

- `name`: our dotted name (EMQX's shape), e.g. ``"message.publish"``;
- `method`: the plugin method that hooks it, ``"on_" + name with "." -> "_"``,
  e.g. ``on_message_publish``;
- `mode`: how its chain runs (`Mode.NOTIFY`, `Mode.DECIDE`, `Mode.FOLD`, see
  `actormq.hooks.chains`);
- `args`: what the hook method receives, in order;
- `vernemq`, `emqx`, `gmqtt`: the closest hook of each broker ("" when it has
  none); `mapping_table()` renders the README's table from them.

A plugin method named ``on_<something>`` that is not a point here is an error
at load time (a typo must not silently never run).

The argument types (`ClientInfo`, `Message`, `SubOptions`, `AuthExchange`,
`DropReason`) are described in `actormq.hooks.info`; the results each mode
expects are in `actormq.hooks.results`.
"""

from __future__ import annotations

import enum


class Mode(enum.Enum):
    """How a chain of providers runs; named by intent (VerneMQ's all / all_till_ok, EMQX's fold)."""

    NOTIFY = "notify"   # observers: told later, never delay the client, results ignored
    DECIDE = "decide"   # ok / next / error; the first ok or error ends the chain
    FOLD = "fold"       # each may replace the value; the next one sees the change


_CONNECT_MODIFIERS = frozenset({
    "max_inflight_messages", "max_online_messages", "max_offline_messages", "queue_type",
    "max_message_size", "mountpoint", "client_id", "clean_session", "clean_start", "superuser",
})
_MESSAGE_MODIFIERS = frozenset({"topic_name", "payload", "qos", "retain", "properties"})


class HookPoint(enum.Enum):
    CLIENT_CONNECT = ("client.connect", Mode.NOTIFY, "client", "", "client.connect", "OnAccept")
    CLIENT_AUTHENTICATE = ("client.authenticate", Mode.DECIDE, "client",
                           "auth_on_register, auth_on_register_m5", "client.authenticate",
                           "OnBasicAuth")
    CLIENT_ENHANCED_AUTH = ("client.enhanced_auth", Mode.DECIDE, "client, exchange",
                            "on_auth_m5", "client.enhanced_authenticate",
                            "OnEnhancedAuth, OnReAuth")
    CLIENT_CONNACK = ("client.connack", Mode.NOTIFY, "client, reason_code", "", "client.connack", "")
    CLIENT_CONNECTED = ("client.connected", Mode.NOTIFY, "client",
                        "on_register, on_register_m5", "client.connected", "OnConnected")
    CLIENT_DISCONNECTED = ("client.disconnected", Mode.NOTIFY, "client, reason", "",
                           "client.disconnected", "OnClosed")
    CLIENT_WAKEUP = ("client.wakeup", Mode.NOTIFY, "client", "on_client_wakeup", "", "")
    CLIENT_OFFLINE = ("client.offline", Mode.NOTIFY, "client", "on_client_offline", "", "")
    CLIENT_GONE = ("client.gone", Mode.NOTIFY, "client", "on_client_gone", "", "")

    SESSION_CREATED = ("session.created", Mode.NOTIFY, "client", "", "session.created",
                       "OnSessionCreated")
    SESSION_RESUMED = ("session.resumed", Mode.NOTIFY, "client", "", "session.resumed",
                       "OnSessionResumed")
    SESSION_DISCARDED = ("session.discarded", Mode.NOTIFY, "client", "", "session.discarded", "")
    SESSION_TAKEN_OVER = ("session.taken_over", Mode.NOTIFY, "client", "",
                          "session.takenover (4.x: session.takeovered)", "")
    SESSION_TERMINATED = ("session.terminated", Mode.NOTIFY, "client_id, reason", "",
                          "session.terminated", "OnSessionTerminated")
    SESSION_EXPIRED = ("session.expired", Mode.NOTIFY, "client_id", "on_session_expired",
                       "session.terminated (expired)", "OnSessionTerminated (expired)")

    CLIENT_AUTHORIZE_SUBSCRIBE = ("client.authorize_subscribe", Mode.DECIDE,
                                  "client, topic_filter, options",
                                  "auth_on_subscribe, auth_on_subscribe_m5",
                                  "client.authorize (subscribe), client.subscribe",
                                  "OnSubscribe")
    SESSION_SUBSCRIBED = ("session.subscribed", Mode.NOTIFY, "client, topic_filter, options",
                          "on_subscribe, on_subscribe_m5", "session.subscribed", "OnSubscribed")
    CLIENT_UNSUBSCRIBE = ("client.unsubscribe", Mode.DECIDE, "client, topic_filter",
                          "on_unsubscribe, on_unsubscribe_m5", "client.unsubscribe",
                          "OnUnsubscribe")
    SESSION_UNSUBSCRIBED = ("session.unsubscribed", Mode.NOTIFY, "client, topic_filter", "",
                            "session.unsubscribed", "OnUnsubscribed")

    CLIENT_AUTHORIZE_PUBLISH = ("client.authorize_publish", Mode.DECIDE, "client, message",
                                "auth_on_publish, auth_on_publish_m5",
                                "client.authorize (publish)", "OnMsgArrived (reject)")
    MESSAGE_PUBLISH = ("message.publish", Mode.FOLD, "client, message",
                       "on_publish, on_publish_m5", "message.publish", "OnMsgArrived")
    MESSAGE_DELIVER = ("message.deliver", Mode.FOLD, "client_id, message",
                       "on_deliver, on_deliver_m5", "message.delivered", "OnDelivered")
    MESSAGE_ACKED = ("message.acked", Mode.NOTIFY, "client_id, message", "", "message.acked", "")
    MESSAGE_DROPPED = ("message.dropped", Mode.NOTIFY, "client_id, message, reason",
                       "on_message_drop", "message.dropped, delivery.dropped", "OnMsgDropped")
    MESSAGE_OFFLINE = ("message.offline", Mode.NOTIFY, "client_id, message",
                       "on_offline_message", "", "")
    WILL_PUBLISH = ("message.will", Mode.FOLD, "client_id, message", "", "", "OnWillPublish")
    WILL_PUBLISHED = ("message.will_published", Mode.NOTIFY, "client_id, message", "", "",
                      "OnWillPublished")

    def __init__(self, dotted: str, mode: Mode, args: str, vernemq: str, emqx: str,
                 gmqtt: str) -> None:
        self.dotted = dotted
        self.mode = mode
        self.args = args
        self.vernemq = vernemq
        self.emqx = emqx
        self.gmqtt = gmqtt
        self.method = "on_" + dotted.replace(".", "_")
        self.attribute = dotted.replace(".", "_")

    @property
    def modifiers(self) -> frozenset[str]:
        """The modifier names an `Ok` answer may carry at this point (empty: none)."""
        return _MODIFIERS.get(self, frozenset())

    @classmethod
    def from_method(cls, method: str) -> "HookPoint":
        """The point a plugin method name hooks; KeyError names what is wrong."""
        point = _BY_METHOD.get(method)
        if point is None:
            raise KeyError(f"{method} is not a hook point (known: {', '.join(sorted(_BY_METHOD))})")
        return point

    @classmethod
    def from_name(cls, name: str) -> "HookPoint":
        """A point by its dotted name, its method name, or a VerneMQ/EMQX/Gmqtt name."""
        point = _BY_ANY_NAME.get(name.strip())
        if point is None:
            raise KeyError(f"unknown hook point {name!r}")
        return point


_MODIFIERS = {
    HookPoint.CLIENT_AUTHENTICATE: _CONNECT_MODIFIERS,
    HookPoint.CLIENT_ENHANCED_AUTH: _CONNECT_MODIFIERS | {"auth_data"},
    HookPoint.CLIENT_AUTHORIZE_SUBSCRIBE: frozenset({"qos", "topic_filter"}),
    HookPoint.CLIENT_UNSUBSCRIBE: frozenset({"topic_filter"}),
    HookPoint.CLIENT_AUTHORIZE_PUBLISH: _MESSAGE_MODIFIERS,
}
_BY_METHOD = {point.method: point for point in HookPoint}


def _names(point: HookPoint):
    yield point.dotted
    yield point.method
    for text in (point.vernemq, point.emqx, point.gmqtt):
        for part in text.split(","):
            name = part.split("(")[0].strip()
            if name:
                yield name


_BY_ANY_NAME: dict[str, HookPoint] = {}
for _point in HookPoint:
    for _name in _names(_point):
        _BY_ANY_NAME.setdefault(_name, _point)


def mapping_table() -> str:
    """The README's table: each point, its mode, arguments and the three brokers' names."""
    rows = ["| point (method) | mode | arguments | VerneMQ | EMQX | Gmqtt |",
            "|---|---|---|---|---|---|"]
    for point in HookPoint:
        rows.append(f"| `{point.dotted}` (`{point.method}`) | {point.mode.value} | {point.args} | "
                    f"{point.vernemq or '—'} | {point.emqx or '—'} | {point.gmqtt or '—'} |")
    return "\n".join(rows)
