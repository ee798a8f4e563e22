"""Logging setup: one line per record on stderr, tagged with the process name.

Format: `2026-11-23T09:40:00.123 INFO  [worker-0] actormq.connection: message`.
Each process (the node, every worker) calls `setup_logging` once after it starts;
calling it again replaces the handler instead of adding a second one.
"""

from __future__ import annotations

import logging
import sys

from actormq.errors import ConfigError

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class _ActormqHandler(logging.StreamHandler):
    """The stderr handler `setup_logging` installs; its class marks it for replacement."""


def setup_logging(level: str, process_name: str = "node") -> None:
    """Send log records at `level` (debug/info/warning/error) and above to stderr."""
    try:
        threshold = _LEVELS[level.lower()]
    except KeyError:
        raise ConfigError(f"expected one of {', '.join(_LEVELS)}, got {level!r}", key="log.level") from None
    tag = process_name.replace("%", "%%")
    handler = _ActormqHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s.%(msecs)03d %(levelname)-5s [{tag}] %(name)s: %(message)s", _DATE_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ActormqHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
