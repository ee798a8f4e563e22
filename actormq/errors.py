"""The error hierarchy: every error actormq raises on purpose is an ActormqError.

Foreign errors (lmdb.Error, zmq.ZMQError, OSError from config files) are mapped
to these at the module boundary where they occur.
"""


class ActormqError(Exception):
    """Base of every error actormq raises on purpose."""


class ProtocolError(ActormqError):
    """A peer broke the MQTT protocol; carries the MQTT 5 reason code to answer with."""

    def __init__(self, reason_code: int, detail: str = "") -> None:
        super().__init__(f"0x{int(reason_code):02X} {detail}".strip())
        self.reason_code = int(reason_code)
        self.detail = detail


class ConfigError(ActormqError):
    """A bad config key, value, file line or command-line flag."""

    def __init__(self, message: str, key: str | None = None, line: int | None = None,
                 source: str | None = None) -> None:
        where = []
        if source:
            where.append(source if line is None else f"{source}:{line}")
        elif line is not None:
            where.append(f"line {line}")
        if key:
            where.append(f"key '{key}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.key = key
        self.line = line
        self.source = source


class StorageError(ActormqError):
    """The storage backend failed (LMDB error, incompatible data dir)."""


class StorageFullError(StorageError):
    """The store cannot take more data (map at its maximum size, disk full)."""


class TransportError(ActormqError):
    """The ZeroMQ bus or a listener failed."""
