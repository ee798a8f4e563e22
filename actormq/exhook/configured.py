"""Whether the config asks for ExHook: a module that imports no gRPC, so a
broker installed without the `exhook` extra can tell that it does not need it."""

from __future__ import annotations

from typing import Any


def wanted(config: Any) -> bool:
    """Some `exhook.server.<name>.url` is set."""
    return any(key.endswith(".url") for key in config.section("exhook.server."))
