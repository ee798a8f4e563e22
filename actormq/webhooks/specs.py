"""Which webhooks are registered: from the config file and from `actormq webhooks register`.

`Webhook` is one registration (hook, endpoint and its options). `from_config`
reads `webhooks.<name>.*` and, when `plugins.vmq_webhooks = on`, VerneMQ's
`vmq_webhooks.<name>.*`, in lexical order of `<name>`. `RegistrationStore`
owns the runtime registrations, kept in `webhooks.json` in the data dir so
that they survive a restart (VerneMQ forgets them).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

from actormq.conf.areas.webhooks import VMQ_HOOKS
from actormq.errors import ConfigError

log = logging.getLogger("actormq.webhooks")

STORE_FILE = "webhooks.json"
_STORE_VERSION = 1
_OPTIONS = ("hook", "endpoint", "base64encode", "no_payload", "response_timeout")


@dataclass(frozen=True, slots=True)
class Webhook:
    """One endpoint registered on one hook."""

    hook: str
    endpoint: str
    base64_payload: bool = True
    no_payload: bool = False
    response_timeout: int = 5000  # milliseconds
    name: str = ""                # the config name; empty for runtime registrations

    def row(self) -> dict[str, Any]:
        """The row of `webhooks show` (VerneMQ's columns)."""
        return {"hook": self.hook, "endpoint": self.endpoint,
                "base64payload": self.base64_payload, "no_payload": self.no_payload,
                "response_timeout": self.response_timeout,
                "source": f"config ({self.name})" if self.name else "runtime"}


def check_endpoint(endpoint: str) -> str:
    """The endpoint if it is an http(s) URL with a host; ValueError otherwise."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {endpoint!r}")
    return endpoint


def check_hook(hook: str) -> str:
    if hook not in VMQ_HOOKS:
        raise ValueError(f"unknown hook {hook!r}; hooks: {', '.join(VMQ_HOOKS)}")
    return hook


def _from_section(config, prefix: str) -> list[Webhook]:
    section = {key: value for key, value in config.section(prefix).items()
               if key.count(".") == 1 and key.split(".")[1] in _OPTIONS}
    names = sorted({key.split(".", 1)[0] for key in section})
    hooks = []
    for name in names:
        options = {key.split(".", 1)[1]: value for key, value in section.items()
                   if key.split(".", 1)[0] == name}
        for required in ("hook", "endpoint"):
            if required not in options:
                raise ConfigError(f"webhook {name!r} needs {prefix}{name}.{required} as well",
                                  key=f"{prefix}{name}.{required}")
        try:
            endpoint = check_endpoint(options["endpoint"])
        except ValueError as err:
            raise ConfigError(str(err), key=f"{prefix}{name}.endpoint") from None
        hooks.append(Webhook(options["hook"], endpoint, options.get("base64encode", True),
                             options.get("no_payload", False), options.get("response_timeout", 5000),
                             name))
    return hooks


def from_config(config) -> list[Webhook]:
    """The webhooks of the config, in lexical order of their names."""
    hooks = _from_section(config, "webhooks.")
    vmq_hooks = _from_section(config, "vmq_webhooks.")
    if vmq_hooks and not config["plugins.vmq_webhooks"]:
        log.warning("%d vmq_webhooks.<name> webhooks are configured but plugins.vmq_webhooks is off: "
                    "they are not called (set plugins.vmq_webhooks = on, or write them as "
                    "webhooks.<name>.*)", len(vmq_hooks))
        vmq_hooks = []
    return sorted(hooks + vmq_hooks, key=lambda webhook: webhook.name)


class RegistrationStore:
    """The runtime registrations, persisted as JSON in the data dir (written atomically)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / STORE_FILE

    def load(self) -> list[Webhook]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):   # no data dir yet, or its own check fails
            return []
        except (OSError, ValueError) as err:
            log.error("cannot read the webhook registrations in %s (%s); starting without them",
                      self.path, err)
            return []
        return [Webhook(**{**item, "name": ""}) for item in document.get("webhooks", [])]

    def save(self, webhooks: Iterable[Webhook]) -> None:
        items = [{key: value for key, value in asdict(webhook).items() if key != "name"}
                 for webhook in webhooks]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"version": _STORE_VERSION, "webhooks": items}, indent=1),
                             encoding="utf-8")
        os.replace(temporary, self.path)

    def register(self, webhook: Webhook) -> list[Webhook]:
        """Add a registration; ValueError if that hook already has that endpoint."""
        webhooks = self.load()
        if any(w.hook == webhook.hook and w.endpoint == webhook.endpoint for w in webhooks):
            raise ValueError(f"{webhook.endpoint} is already registered on {webhook.hook}")
        webhooks.append(webhook)
        self.save(webhooks)
        return webhooks

    def deregister(self, hook: str, endpoint: str) -> list[Webhook]:
        """Remove a registration; ValueError if there is none."""
        webhooks = self.load()
        kept = [w for w in webhooks if not (w.hook == hook and w.endpoint == endpoint)]
        if len(kept) == len(webhooks):
            raise ValueError(f"{endpoint} is not registered on {hook} at runtime")
        self.save(kept)
        return kept
