"""The config schema: every key actormq knows, with its type, default, range and doc line.

Owns the value types (parsing a text value into a typed one and formatting it
back) and the rendering of the default `actormq.conf`. Loading files, the
environment and flags is `actormq.conf.load`'s job.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any


class Kind(enum.Enum):
    """The type of a config value; the value is the word used in messages and docs."""

    INT = "integer"
    FLOAT = "number"
    BOOL = "boolean"
    STR = "string"
    ENUM = "enum"
    BYTESIZE = "byte size"
    DURATION = "duration"


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE = frozenset({"true", "on", "yes", "1"})
_FALSE = frozenset({"false", "off", "no", "0"})
_NUMBER_WITH_UNIT = re.compile(r"\s*(\d+)\s*([a-zA-Z]*)\s*")


def _parse_int(text: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"expected true/false (or on/off, yes/no, 1/0), got {text!r}")


def _parse_with_unit(text: str, units: dict[str, int], expected: str) -> int:
    match = _NUMBER_WITH_UNIT.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in units:
        raise ValueError(f"expected {expected}, got {text!r}")
    return int(match.group(1)) * units[unit]


def _parse_bytesize(text: str) -> int:
    return _parse_with_unit(text, _BYTE_UNITS, "a byte size (e.g. 64KB, 1MB, 16GB or plain bytes)")


def _parse_duration(text: str) -> int:
    return _parse_with_unit(text, _DURATION_UNITS, "a duration (e.g. 30s, 5m, 1h, 1d or plain seconds)")


def _format_with_unit(value: int, units: dict[str, int], upper: bool) -> str:
    if value == 0:
        return "0"
    for unit, factor in sorted(units.items(), key=lambda item: -item[1]):
        if unit and value % factor == 0:
            return f"{value // factor}{unit.upper() if upper else unit}"
    return str(value)


_PARSERS = {
    Kind.INT: _parse_int,
    Kind.FLOAT: _parse_float,
    Kind.BOOL: _parse_bool,
    Kind.STR: str,
    Kind.BYTESIZE: _parse_bytesize,
    Kind.DURATION: _parse_duration,
}
_PYTHON_TYPES = {
    Kind.INT: int, Kind.FLOAT: (int, float), Kind.BOOL: bool, Kind.STR: str,
    Kind.ENUM: str, Kind.BYTESIZE: int, Kind.DURATION: int,
}


@dataclass(frozen=True, slots=True)
class Key:
    """One config key: its dotted name, type, default (as written in a file) and doc line."""

    name: str
    kind: Kind
    default_text: str
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def default(self) -> Any:
        return self.parse(self.default_text)

    def parse(self, text: str) -> Any:
        """Turn a text value into a typed, range-checked one; ValueError says what is wrong."""
        if self.kind is Kind.ENUM:
            value = text.strip().lower()
            if value not in self.choices:
                raise ValueError(f"expected one of {', '.join(self.choices)}, got {text!r}")
            return value
        return self.check(_PARSERS[self.kind](text))

    def check(self, value: Any) -> Any:
        """Validate an already typed value (type, choices, range) and return it."""
        expected = _PYTHON_TYPES[self.kind]
        if not isinstance(value, expected) or (self.kind is not Kind.BOOL and isinstance(value, bool)):
            raise ValueError(f"expected a {self.kind.value}, got {value!r}")
        if self.kind is Kind.ENUM and value not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {value!r}")
        if self.kind is Kind.FLOAT:
            value = float(value)
        self._check_range(value)
        return value

    def _check_range(self, value: Any) -> None:
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{self.format(value)} is out of range ({self.range_text()})")

    def range_text(self) -> str:
        low = "" if self.minimum is None else self.format(self.minimum)
        high = "" if self.maximum is None else self.format(self.maximum)
        if low and high:
            return f"{low}..{high}"
        return f">= {low}" if low else (f"<= {high}" if high else "")

    def format(self, value: Any) -> str:
        """The text form of a typed value, as it would be written in a config file."""
        if self.kind is Kind.BOOL:
            return "true" if value else "false"
        if self.kind is Kind.BYTESIZE:
            return _format_with_unit(int(value), _BYTE_UNITS, upper=True)
        if self.kind is Kind.DURATION:
            return _format_with_unit(int(value), _DURATION_UNITS, upper=False)
        if self.kind is Kind.FLOAT:
            return repr(float(value))
        if self.kind is Kind.STR and (value == "" or value != value.strip() or "#" in value):
            quote = "'" if '"' in value else '"'
            return quote + value + quote
        return str(value)

    def type_text(self) -> str:
        if self.kind is Kind.ENUM:
            return "one of " + ", ".join(self.choices)
        return f"{self.kind.value} {self.range_text()}".strip()


_STORAGE_MODES = ("ram", "disc", "disc_only")
_U16 = {"minimum": 0, "maximum": 65535}


KEYS: tuple[Key, ...] = (
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
    Key("log.level", Kind.ENUM, "info", "Lowest level of the log lines written to stderr.",
        choices=("debug", "info", "warning", "error")),
    Key("storage.dir", Kind.STR, "./data",
        "Directory of the LMDB files (offline queues, retained messages)."),
    Key("storage.map_size", Kind.BYTESIZE, "64MB", "Initial LMDB map size; it grows as needed.",
        minimum=1 << 20),
    Key("storage.max_map_size", Kind.BYTESIZE, "16GB", "Largest LMDB map size; past it writes fail as full.",
        minimum=1 << 20),
    Key("storage.commit_batch", Kind.INT, "1000", "Commit after this many writes at most.", minimum=1),
    Key("storage.commit_interval_ms", Kind.INT, "5", "Commit at most this many milliseconds after a write.",
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
    Key("queue.type", Kind.ENUM, "fifo", "Delivery order of queued messages.", choices=("fifo", "lifo")),
    Key("queue.drop", Kind.ENUM, "newest",
        "Which message a full queue drops: newest (the arriving one) or oldest.",
        choices=("newest", "oldest")),
    Key("mqtt.max_packet_size", Kind.BYTESIZE, "1MB", "Largest MQTT packet accepted.",
        minimum=2, maximum=268435460),
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
    Key("bus.hwm", Kind.INT, "100000", "ZeroMQ high-water mark of the bus sockets (0 = no limit).",
        minimum=0),
    Key("plugins.order", Kind.STR, "",
        "Comma-separated plugin names; the first runs earliest in each hook chain."),
)

SCHEMA: dict[str, Key] = {key.name: key for key in KEYS}


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
    return "".join(parts)
