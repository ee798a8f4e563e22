"""The config schema: every key actormq knows, with its type, default, range and doc line.

Owns the core keys (listener, node, log, storage, queue, mqtt, bus) and the
collection of every feature area's keys (`actormq.conf.areas`), the lookup of
a dotted name among fixed keys and pattern keys (a `<name>` segment stands
for any name, as in `listener.ssl.<name>.certfile`), and the rendering of the
default `actormq.conf`. Value types live in `actormq.conf.keytypes`; loading
files, the environment and flags is `actormq.conf.load`'s job.
"""

from __future__ import annotations

import re
from typing import Any

from actormq.conf import areas
from actormq.conf.keytypes import Key, Kind

__all__ = ["Key", "Kind", "KEYS", "PATTERNS", "SCHEMA", "lookup", "default_values",
           "render_default_config"]

_STORAGE_MODES = ("ram", "disc", "disc_only")
_U16 = {"minimum": 0, "maximum": 65535}


CORE_KEYS: tuple[Key, ...] = (
    Key("listener.tcp.host", Kind.STR, "0.0.0.0", "Address the MQTT TCP listener binds to."),
    Key("listener.tcp.port", Kind.INT, "1883", "Port of the MQTT TCP listener (0 = pick a free port).",
        **_U16),
    Key("listener.tcp.backlog", Kind.INT, "1024", "Listen backlog of the MQTT TCP listener.",
        minimum=1, maximum=65535),
    Key("listener.tcp.worker_ports", Kind.BOOL, "false",
        "Each worker also listens on a port of its own (a free one), shown in the banner."),
    Key("node.name", Kind.STR, "actormq@127.0.0.1", "Name of this node in a cluster."),
    Key("node.workers", Kind.INT, "0", "Number of worker processes (0 = one per CPU core).",
        minimum=0, maximum=1024),
    Key("node.supervised", Kind.BOOL, "false",
        "At -w 1, run the worker in a process of its own that the node restarts when it dies "
        "(off: one process, restarted by the service manager; -w 2 and more always supervise)."),
    Key("log.level", Kind.ENUM, "info", "Lowest level of the log lines written to stderr.",
        choices=("debug", "info", "warning", "error")),
    Key("log.connections", Kind.BOOL, "on",
        "Log every client connect and disconnect at info (client id, peer, version, reason)."),
    Key("storage.dir", Kind.STR, "./data",
        "Directory of the LMDB files (offline queues, retained messages)."),
    Key("storage.map_size", Kind.BYTESIZE, "64MB", "Initial LMDB map size; it grows as needed.",
        minimum=1 << 20),
    Key("storage.max_map_size", Kind.BYTESIZE, "16GB", "Largest LMDB map size; past it writes fail as full.",
        minimum=1 << 20),
    Key("storage.sync", Kind.ENUM, "on",
        "on: each commit is flushed to disk (survives a power cut); off: it reaches the OS "
        "(survives a killed broker, not a power cut).", choices=("on", "off")),
    Key("storage.log", Kind.ENUM, "on",
        "on: queued messages and sessions are acknowledged once in the worker's write-ahead log "
        "(flushed with storage.sync = on), LMDB is written behind it in large batches; "
        "off: each commit goes to LMDB itself.", choices=("on", "off")),
    Key("storage.commit_batch", Kind.INT, "1000", "Most writes one commit takes.", minimum=1),
    Key("storage.commit_interval_ms", Kind.INT, "0",
        "Wait this long after a write for more to join its commit (0: an idle writer commits at once).",
        minimum=0, maximum=60000),
    Key("retained.storage", Kind.ENUM, "disc", "Storage mode of retained messages.", choices=_STORAGE_MODES),
    Key("retained.max_messages", Kind.INT, "0", "Most retained messages kept (0 = unlimited).", minimum=0),
    Key("retained.max_payload_size", Kind.BYTESIZE, "0", "Largest retained payload kept (0 = unlimited).",
        minimum=0),
    Key("retained.expiry_interval", Kind.DURATION, "0", "Retained messages expire after this (0 = never).",
        minimum=0),
    Key("queue.storage", Kind.ENUM, "disc", "Storage mode of offline queues.", choices=_STORAGE_MODES),
    Key("queue.max_inflight", Kind.INT, "100", "Most unacknowledged QoS 1/2 messages per session (the client's receive maximum caps it further).",
        minimum=1, maximum=65535),
    Key("queue.max_online_messages", Kind.INT, "1000",
        "Most messages queued for a connected session (0 = unlimited).", minimum=0),
    Key("queue.max_offline_messages", Kind.INT, "1000",
        "Most messages queued for a disconnected session (0 = unlimited).", minimum=0),
    Key("queue.max_publisher_hold", Kind.DURATION, "1s",
        "Longest a publisher is held back for one message to a subscriber whose queue is "
        "full; then the queue's drop policy decides.", minimum=0),
    Key("queue.type", Kind.ENUM, "fifo", "Delivery order of queued messages.", choices=("fifo", "lifo")),
    Key("queue.drop", Kind.ENUM, "newest",
        "Which message a full queue drops: newest (the arriving one) or oldest.",
        choices=("newest", "oldest")),
    Key("mqtt.max_packet_size", Kind.BYTESIZE, "1MB", "Largest MQTT packet accepted.",
        minimum=2, maximum=268435460),
    Key("mqtt.max_connect_packet_size", Kind.BYTESIZE, "64KB",
        "Largest CONNECT accepted: what a client that has not connected yet may make the broker buffer.",
        minimum=16, maximum=268435460),
    Key("mqtt.connect_timeout", Kind.DURATION, "30",
        "A connection must complete its CONNECT within this many seconds of the accept.",
        minimum=1, maximum=3600),
    Key("mqtt.max_client_id_len", Kind.INT, "65535", "Longest client identifier accepted.",
        minimum=23, maximum=65535),
    Key("mqtt.allow_anonymous", Kind.BOOL, "true", "Accept clients that send no username."),
    Key("mqtt.allow_empty_client_id", Kind.BOOL, "true",
        "Accept an empty client id and assign one (clean sessions only in 3.1.1)."),
    Key("mqtt.retain_available", Kind.BOOL, "true", "Support retained messages."),
    Key("mqtt.wildcard_subscription_available", Kind.BOOL, "true", "Support wildcard subscriptions."),
    Key("mqtt.shared_subscription_available", Kind.BOOL, "true",
        "Support shared subscriptions ($share/...)."),
    Key("mqtt.subscription_identifier_available", Kind.BOOL, "true",
        "Support MQTT 5 subscription identifiers."),
    Key("mqtt.max_qos", Kind.INT, "2", "Highest QoS the broker grants.", minimum=0, maximum=2),
    Key("mqtt.receive_maximum", Kind.INT, "65535", "MQTT 5 Receive Maximum the broker announces.",
        minimum=1, maximum=65535),
    Key("mqtt.topic_alias_maximum", Kind.INT, "65535", "MQTT 5 Topic Alias Maximum the broker announces.",
        **_U16),
    Key("mqtt.server_keepalive", Kind.INT, "0",
        "Keep alive the broker imposes, in seconds (0 = accept the client's).",
        **_U16),
    Key("mqtt.max_keepalive", Kind.INT, "65535", "Longest keep alive accepted, in seconds.", **_U16),
    Key("mqtt.keepalive_multiplier", Kind.FLOAT, "1.5",
        "A client is disconnected after keep alive x this without a packet.", minimum=1.0, maximum=10.0),
    Key("mqtt.max_session_expiry_interval", Kind.DURATION, "0",
        "Cap on the session expiry interval a client asks for (0 = no cap).", minimum=0, maximum=4294967295),
    Key("mqtt.persistent_client_expiration", Kind.DURATION, "0",
        "Drop MQTT 3.1.1 clean_session=0 sessions unused this long (0 = never).", minimum=0),
    Key("sys_interval", Kind.DURATION, "10", "Interval of the $SYS topic updates (0 = off).", minimum=0),
    Key("bus.hwm", Kind.INT, "100000", "Frames that may wait for one other worker of the node (0 = no limit).",
        minimum=0),
    Key("worker.sched_slice_us", Kind.INT, "0",
        "Time slice each worker asks of Linux's fair scheduler (EEVDF, 6.12+), in µs: a short one gets a "
        "core sooner when a client's packet wakes the worker on a machine busy with other work, e.g. 300 "
        "(the kernel takes 100..100000; 0 = the kernel's default; ignored under a real-time policy).",
        minimum=0, maximum=100000),
)

KEYS: tuple[Key, ...] = CORE_KEYS + areas.KEYS
SCHEMA: dict[str, Key] = {key.name: key for key in KEYS}

# Keys with a `<name>` segment: present only when set (no default value in a Config).
PATTERNS: tuple[Key, ...] = areas.PATTERNS
_NAME = r"[A-Za-z0-9_\-]+"


def _pattern_regex(name: str) -> re.Pattern:
    segments = (_NAME if part.startswith("<") else re.escape(part) for part in name.split("."))
    return re.compile(r"\.".join(segments))


_PATTERN_REGEXES = tuple((_pattern_regex(key.name), key) for key in PATTERNS)


def lookup(name: str) -> Key | None:
    """The Key a dotted name stands for: a fixed key, or a pattern key it matches."""
    key = SCHEMA.get(name)
    if key is not None:
        return key
    for regex, pattern in _PATTERN_REGEXES:
        if regex.fullmatch(name):
            return pattern
    return None


def default_values() -> dict[str, Any]:
    """The typed default of every key."""
    return {key.name: key.default for key in KEYS}


_HEADER = """\
## actormq.conf: the actormq broker configuration.
##
## Lines are `dotted.key = value`. `#` starts a comment, at the start of a
## line or after a space; quote a value that contains " #". Byte sizes take
## KB, MB, GB, TB (powers of 1024) or plain bytes; durations take s, m, h, d
## or plain seconds; booleans are true/false, on/off, yes/no or 1/0.
##
## Every key is listed below with its default. Environment variables
## ACTORMQ__DOTTED__KEY (e.g. ACTORMQ__QUEUE__MAX_INFLIGHT=50) override this
## file; command-line flags override both.
"""


def render_default_config() -> str:
    """The text of the default `actormq.conf`: every key, its doc line, type and default."""
    parts = [_HEADER]
    section = None
    for key in KEYS:
        head = key.name.split(".", 1)[0]
        if head != section:
            parts.append(f"\n## ---- {head} ----\n")
            section = head
        parts.append(f"\n## {key.doc}\n## type: {key.type_text()}\n{key.name} = {key.format(key.default)}\n")
    if PATTERNS:
        parts.append("\n## ---- keys with a name of your choice (<name>), set only when used ----\n")
    for key in PATTERNS:
        parts.append(f"\n## {key.doc}\n## type: {key.type_text()}\n# {key.name} = {key.format(key.default)}\n")
    return "".join(parts)
