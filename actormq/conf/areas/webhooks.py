"""Config keys of the webhooks area: VerneMQ-compatible webhooks and the EMQX 4 web hook.

`webhooks.<name>.*` is actormq's spelling; VerneMQ's `plugins.vmq_webhooks`
and `vmq_webhooks.<name>.*` lines are accepted verbatim (they take effect
when `plugins.vmq_webhooks = on`, as in VerneMQ). `web.hook.*` are EMQX 4's
`emqx_web_hook` keys, including the rules `web.hook.rule.<event>.<n>`.
"""

from __future__ import annotations

from actormq.conf.keytypes import Key, Kind

VMQ_HOOKS = (
    "auth_on_register", "auth_on_publish", "auth_on_subscribe", "on_register", "on_publish",
    "on_subscribe", "on_unsubscribe", "on_deliver", "on_offline_message", "on_client_wakeup",
    "on_client_offline", "on_client_gone", "on_session_expired",
    "auth_on_register_m5", "auth_on_publish_m5", "auth_on_subscribe_m5", "on_register_m5",
    "on_publish_m5", "on_subscribe_m5", "on_unsubscribe_m5", "on_deliver_m5", "on_auth_m5",
)

EMQX_EVENTS = (
    "client.connect", "client.connack", "client.connected", "client.disconnected",
    "client.subscribe", "client.unsubscribe", "session.subscribed", "session.unsubscribed",
    "session.terminated", "message.publish", "message.delivered", "message.acked",
    "message.dropped",
)

_POSITIVE = {"minimum": 1}


def _webhook_keys(prefix: str, origin: str) -> tuple[Key, ...]:
    return (
        Key(f"{prefix}.<name>.hook", Kind.ENUM, "on_publish",
            f"Hook this webhook is called on{origin}.", choices=VMQ_HOOKS),
        Key(f"{prefix}.<name>.endpoint", Kind.STR, "http://127.0.0.1:8080/hook",
            f"URL the webhook POSTs to{origin}."),
        Key(f"{prefix}.<name>.base64encode", Kind.BOOL, "on",
            f"Payloads base64-encoded in the JSON body{origin}."),
        Key(f"{prefix}.<name>.no_payload", Kind.BOOL, "off",
            f"auth_on_publish(_m5) bodies carry no payload{origin}."),
        Key(f"{prefix}.<name>.response_timeout", Kind.INT, "5000",
            f"Milliseconds to wait for the endpoint's answer{origin}.", **_POSITIVE),
    )


_VMQ = " (VerneMQ spelling; needs plugins.vmq_webhooks = on)"

KEYS: tuple[Key, ...] = (
    Key("webhooks.pool_max_connections", Kind.INT, "100",
        "Most keep-alive HTTP connections per webhook endpoint.", **_POSITIVE),
    Key("webhooks.pool_timeout", Kind.INT, "60000",
        "Milliseconds an idle pooled connection is kept open.", **_POSITIVE),
    Key("webhooks.queue_size", Kind.INT, "10000",
        "Notifications waiting per endpoint; when full, new ones are dropped and counted.",
        **_POSITIVE),
    Key("webhooks.sender_nice", Kind.INT, "19",
        "Nice value of the process that sends notifications (it leaves a real-time policy "
        "too): best effort, it only uses the CPU the broker leaves.", minimum=0, maximum=19),
    Key("webhooks.sender_idle", Kind.BOOL, "on",
        "The notification sender runs at the SCHED_IDLE policy (Linux): only on a CPU with "
        "nothing else to run, giving it up at once to any other task; off: nice only."),
    Key("webhooks.sender_cpu_share", Kind.FLOAT, "0.05",
        "Share of each core the notification sender may use while the other processes leave "
        "less than one core idle (it may always use what they leave idle beyond one core): a busy "
        "broker keeps its CPU, a quiet one or a big server sends everything. 1: no limit.",
        minimum=0.001, maximum=1),
    Key("webhooks.cache.max_entries", Kind.INT, "100000",
        "Most cached auth_on_* answers (least recently used evicted first).", minimum=0),
    Key("webhooks.cache.sweep_interval", Kind.DURATION, "30s",
        "How often expired cache entries are removed.", minimum=1),
    Key("webhooks.tls.cafile", Kind.STR, "", "CA file that verifies https endpoints (empty: system CAs)."),
    Key("webhooks.tls.certfile", Kind.STR, "", "Client certificate for https endpoints."),
    Key("webhooks.tls.keyfile", Kind.STR, "", "Key of the client certificate."),
    Key("webhooks.tls.verify_peer", Kind.BOOL, "on", "Verify the certificate of https endpoints."),
    Key("plugins.vmq_webhooks", Kind.BOOL, "off",
        "Enable the vmq_webhooks.<name>.* lines of a vernemq.conf (webhooks.* lines always work)."),
    Key("vmq_webhooks.pool_max_connections", Kind.INT, "100",
        "VerneMQ spelling of webhooks.pool_max_connections.", **_POSITIVE),
    Key("vmq_webhooks.pool_timeout", Kind.INT, "60000", "VerneMQ spelling of webhooks.pool_timeout.",
        **_POSITIVE),
    Key("vmq_webhooks.cafile", Kind.STR, "", "VerneMQ spelling of webhooks.tls.cafile."),
    Key("vmq_webhooks.certfile", Kind.STR, "", "VerneMQ spelling of webhooks.tls.certfile."),
    Key("vmq_webhooks.keyfile", Kind.STR, "", "VerneMQ spelling of webhooks.tls.keyfile."),
    Key("vmq_webhooks.verify_peer", Kind.BOOL, "on", "VerneMQ spelling of webhooks.tls.verify_peer."),
    Key("web.hook.url", Kind.STR, "", "EMQX 4 web hook: URL every rule's event is POSTed to (empty: off)."),
    Key("web.hook.api.url", Kind.STR, "", "EMQX 4.0 spelling of web.hook.url."),
    Key("web.hook.body.encoding_of_payload_field", Kind.ENUM, "plain",
        "EMQX 4 web hook: encoding of the payload field.", choices=("plain", "base64", "base62")),
    Key("web.hook.encode_payload", Kind.ENUM, "plain",
        "EMQX 4.0 spelling of web.hook.body.encoding_of_payload_field.",
        choices=("plain", "base64", "base62")),
    Key("web.hook.pool_size", Kind.INT, "32", "EMQX 4 web hook: most keep-alive connections.",
        **_POSITIVE),
    Key("web.hook.enable_pipelining", Kind.BOOL, "true",
        "Accepted for EMQX 4 compatibility; connections are always kept alive."),
    Key("web.hook.request_timeout", Kind.DURATION, "5s", "EMQX 4 web hook: timeout of one request.",
        minimum=1),
    Key("web.hook.ssl.cacertfile", Kind.STR, "", "EMQX 4 web hook: CA file for an https URL."),
    Key("web.hook.ssl.certfile", Kind.STR, "", "EMQX 4 web hook: client certificate."),
    Key("web.hook.ssl.keyfile", Kind.STR, "", "EMQX 4 web hook: key of the client certificate."),
    Key("web.hook.ssl.verify", Kind.BOOL, "false", "EMQX 4 web hook: verify the server certificate."),
)

PATTERNS: tuple[Key, ...] = (
    _webhook_keys("webhooks", "")
    + _webhook_keys("vmq_webhooks", _VMQ)
    + (Key("web.hook.headers.<name>", Kind.STR, "application/json",
           "EMQX 4 web hook: an HTTP header sent with every request."),)
    + tuple(Key(f"web.hook.rule.{event}.<n>", Kind.STR, '{"action": "on_%s"}' % event.replace(".", "_"),
                f"EMQX 4 web hook rule for {event}: JSON with action and an optional topic filter.")
            for event in EMQX_EVENTS)
)
