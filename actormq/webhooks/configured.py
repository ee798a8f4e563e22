"""Whether the config asks for webhooks (VerneMQ's or EMQX's): a module that
imports no HTTP client, so a broker without webhooks does not load one (see
`actormq.hooks.builtins.WANTED`)."""

from __future__ import annotations

from typing import Any

from actormq.webhooks.specs import RegistrationStore, from_config


def vmq_webhooks(config: Any) -> bool:
    """A `webhooks.<name>.*` is configured, or a webhook was registered at run time."""
    return bool(from_config(config)) or bool(RegistrationStore(config["storage.dir"]).load())


def emqx_web_hook(config: Any) -> bool:
    """`web.hook.url` or `web.hook.api.url` is set."""
    return bool(config["web.hook.url"] or config["web.hook.api.url"])
