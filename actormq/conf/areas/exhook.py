"""Config keys of the exhook area: EMQX 4 ExHook, actormq as gRPC client of HookProvider servers.

The keys are EMQX 4's `emqx_exhook.conf` keys, so a user's lines work as they are.
"""

from __future__ import annotations

from actormq.conf.keytypes import Key, Kind

KEYS: tuple[Key, ...] = (
    Key("exhook.request_timeout", Kind.DURATION, "5s", "Timeout of one call to a HookProvider server.",
        minimum=1),
    Key("exhook.request_failed_action", Kind.ENUM, "deny",
        "Decision when a server cannot be asked (down, timeout, error).", choices=("deny", "ignore")),
    Key("exhook.auto_reconnect", Kind.STR, "60s",
        "Reload an unreachable server at this interval (a duration, or false: never)."),
    Key("exhook.pool_size", Kind.INT, "16", "Accepted for EMQX 4 compatibility (one HTTP/2 channel serves all).",
        minimum=1),
    Key("exhook.hook_priority", Kind.INT, "0", "Accepted for EMQX 4 compatibility; plugins.order orders providers."),
    Key("exhook.queue_size", Kind.INT, "10000",
        "Notifications waiting per server; when full, new ones are dropped and counted.", minimum=1),
    Key("exhook.sender_idle", Kind.BOOL, "on",
        "The notification sender runs at the SCHED_IDLE policy (Linux): only on a CPU with "
        "nothing else to run, giving it up at once to any other task; off: nice 19 only."),
    Key("exhook.sender_cpu_share", Kind.FLOAT, "0.05",
        "Share of each core the notification sender may use while the other processes leave "
        "less than one core idle (it may always use what they leave idle beyond one core): a busy "
        "broker keeps its CPU, a quiet one or a big server sends everything. 1: no limit.",
        minimum=0.001, maximum=1),
)

PATTERNS: tuple[Key, ...] = (
    Key("exhook.server.<name>.url", Kind.STR, "http://127.0.0.1:9000", "URL of a HookProvider gRPC server."),
    Key("exhook.server.<name>.message_publish", Kind.ENUM, "decide",
        "actormq: decide = message.publish waits for the server's answer (EMQX); notify = sent as a "
        "notification nothing waits for, its answer ignored (audit, bridges).", choices=("decide", "notify")),
    Key("exhook.server.<name>.ssl.cacertfile", Kind.STR, "", "CA file that verifies the server (https URL)."),
    Key("exhook.server.<name>.ssl.certfile", Kind.STR, "", "Client certificate for the server."),
    Key("exhook.server.<name>.ssl.keyfile", Kind.STR, "", "Key of the client certificate."),
    Key("exhook.server.<name>.socket_options.keepalive", Kind.BOOL, "true", "TCP keepalive to the server."),
    Key("exhook.server.<name>.socket_options.nodelay", Kind.BOOL, "true", "Accepted for EMQX 4 compatibility."),
    Key("exhook.server.<name>.socket_options.recbuf", Kind.BYTESIZE, "64KB", "Accepted for EMQX 4 compatibility."),
    Key("exhook.server.<name>.socket_options.sndbuf", Kind.BYTESIZE, "16KB", "Accepted for EMQX 4 compatibility."),
)
