"""Config keys of the listeners area: named listeners as VerneMQ and EMQX 4
write them (`listener.<type>.<name> = address:port`, `listener.unix.<name> =
/path`) and their options (`listener.<type>.<name>.<option>`).

The default TCP listener keeps its core keys (`listener.tcp.host`,
`listener.tcp.port`, set by `--host/--port`); `listener.tcp.default` sets
both at once. `actormq.transport.listeners.plan_listeners` turns these keys
into listener specs.
"""

from __future__ import annotations

from actormq.conf.keytypes import Key, Kind

LISTENER_TYPES = ("tcp", "ssl", "ws", "wss", "unix")
TLS_TYPES = ("ssl", "wss")
WS_TYPES = ("ws", "wss")

KEYS: tuple[Key, ...] = (
    Key("listener.max_connections", Kind.INT, "0",
        "Most connections a listener takes at once, over all workers, unless the listener "
        "sets its own (0 = unlimited).", minimum=0),
)


def _option(name: str, kind: Kind, default: str, doc: str, types=LISTENER_TYPES, **extra) -> tuple[Key, ...]:
    return tuple(Key(f"listener.{kind_}.<name>.{name}", kind, default, doc, **extra) for kind_ in types)


_ADDRESSES = tuple(
    Key(f"listener.{kind}.<name>", Kind.STR, default,
        f"A {label} listener named <name> on address:port (several of each type may be set).")
    for kind, default, label in (("tcp", "0.0.0.0:1883", "MQTT over TCP"),
                                 ("ssl", "0.0.0.0:8883", "MQTT over TLS"),
                                 ("ws", "0.0.0.0:8083", "MQTT over WebSocket"),
                                 ("wss", "0.0.0.0:8084", "MQTT over secure WebSocket"))
) + (Key("listener.unix.<name>", Kind.STR, "/var/run/actormq/mqtt.sock",
         "An MQTT listener named <name> on a Unix socket at this path."),)

PATTERNS: tuple[Key, ...] = _ADDRESSES + (
    *_option("max_connections", Kind.INT, "0",
             "Most connections this listener takes at once, over all workers (0 = listener.max_connections).",
             minimum=0),
    *_option("mountpoint", Kind.STR, "",
             "Topic prefix of this listener's clients (%c = client id, %u = username); $SYS is not mounted."),
    *_option("allowed_protocol_versions", Kind.STR, "3,4,5",
             "MQTT protocol levels this listener accepts: 3 (3.1), 4 (3.1.1), 5 (5.0)."),
    *_option("proxy_protocol", Kind.BOOL, "off",
             "Expect a PROXY protocol v1/v2 header first; its client address is the peer's."),
    *_option("use_identity_as_username", Kind.BOOL, "off",
             "Take the username from the client certificate's CN.", types=TLS_TYPES),
    *_option("peer_cert_as_username", Kind.ENUM, "cn",
             "EMQX spelling of use_identity_as_username (cn).", types=TLS_TYPES, choices=("cn",)),
    *_option("certfile", Kind.STR, "", "PEM file of the server certificate (and chain).", types=TLS_TYPES),
    *_option("keyfile", Kind.STR, "", "PEM file of the server's private key.", types=TLS_TYPES),
    *_option("keyfile_password", Kind.STR, "", "Password of an encrypted keyfile.", types=TLS_TYPES),
    *_option("cafile", Kind.STR, "", "PEM file of the CAs that sign client certificates.",
             types=TLS_TYPES),
    *_option("cacertfile", Kind.STR, "", "EMQX spelling of cafile.", types=TLS_TYPES),
    *_option("require_certificate", Kind.BOOL, "off",
             "Refuse clients without a certificate signed by cafile (mutual TLS).", types=TLS_TYPES),
    *_option("fail_if_no_peer_cert", Kind.BOOL, "off", "EMQX spelling of require_certificate.",
             types=TLS_TYPES),
    *_option("tls_version", Kind.STR, "tlsv1.2,tlsv1.3",
             "TLS versions accepted, comma-separated (tlsv1.2, tlsv1.3).", types=TLS_TYPES),
    *_option("tls_versions", Kind.STR, "tlsv1.2,tlsv1.3", "EMQX spelling of tls_version.", types=TLS_TYPES),
    *_option("ciphers", Kind.STR, "", "OpenSSL cipher list for TLS 1.2 (empty = OpenSSL's default).",
             types=TLS_TYPES),
    *_option("path", Kind.STR, "/mqtt", "HTTP path of the WebSocket upgrade.", types=WS_TYPES),
    *_option("mqtt_path", Kind.STR, "/mqtt", "EMQX spelling of path.", types=WS_TYPES),
    *_option("max_frame_size", Kind.BYTESIZE, "0", "Largest WebSocket frame taken (0 = unlimited).",
             types=WS_TYPES, minimum=0),
    *_option("proxy_address_header", Kind.STR, "",
             "HTTP header with the client address set by a proxy, e.g. X-Forwarded-For (empty = none).",
             types=WS_TYPES),
    *_option("proxy_xff_support", Kind.BOOL, "off",
             "VerneMQ spelling: take the client address from X-Forwarded-For.", types=WS_TYPES),
    Key("listener.unix.<name>.file_mode", Kind.STR, "0660", "Permissions of the socket file (octal)."),
)
