"""The Plugin base class: what a Python plugin (built-in or a user's) is.

A plugin is a class with a `name`, the hook methods it wants (named after
the hook points, sync or ``async def``), an optional config schema and
optional `start` / `stop`::

    from actormq.hooks import Plugin, Ok, Error, NEXT, DROP, modified
    from actormq.conf.keytypes import Key, Kind

    class SizeLimit(Plugin):
        name = "size_limit"
        config_schema = (Key("max_bytes", Kind.BYTESIZE, "64KB", "Largest payload accepted."),)

        def on_client_authorize_publish(self, client, message):
            if len(message.payload) > self.settings["max_bytes"]:
                return Error(0x97, "payload too large")     # Quota exceeded
            return NEXT

        async def on_client_authenticate(self, client):       # may await I/O
            user = await self.users.get(client.username)
            return Ok(max_inflight_messages=10) if user else NEXT

Settings: each key of `config_schema` is named relative to the plugin and
set in the config file as ``plugin.<name>.<key> = value``; the loader
validates them with the same error quality as every other key (file, line,
key, exit 2) and hands the typed values in as `self.settings` (defaults
filled in). Every plugin also has the keys of `COMMON_KEYS`:
``plugin.<name>.timeout`` (seconds a decision may take),
``plugin.<name>.failure_policy`` (``deny`` or ``ignore``: what a failure or
timeout of this plugin decides) and ``plugin.<name>.notify_queue`` (length of
its bounded notify queue); the class attributes of the same names are the
defaults.

`self.context` gives the node's whole `Config` (built-ins read their own
area's keys from it) and the worker number. A plugin instance lives in one
worker process (each worker loads its own); `start` runs on that worker's
event loop before its listeners accept clients, `stop` at shutdown and
before a reload replaces the instance. Both may be ``async def``.

Built-in features (password file, ACL, HTTP and Redis auth, webhooks,
ExHook, metrics) are plugins of exactly this kind; see
`actormq.hooks.builtins` for how they are found and switched on.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from actormq.conf.keytypes import Key, Kind
from actormq.hooks.points import HookPoint
from actormq.hooks.results import EMPTY

FAILURE_POLICIES = ("deny", "ignore")

COMMON_KEYS = (
    Key("timeout", Kind.FLOAT, "5.0",
        "Seconds one asynchronous decision of this plugin may take before its failure policy decides.",
        minimum=0.001),
    Key("failure_policy", Kind.ENUM, "deny",
        "What a failure or timeout of this plugin decides: deny (refuse / drop) or ignore (as if next).",
        choices=FAILURE_POLICIES),
    Key("notify_queue", Kind.INT, "10000",
        "Events waiting for this plugin's notify hooks; beyond that they are dropped and counted.",
        minimum=1),
)


@dataclass(frozen=True, slots=True)
class PluginContext:
    """Where a plugin runs: the node's config (an `actormq.conf.Config`) and the worker number."""

    config: Any = None
    worker: int = 0


class Plugin:
    """Base class of every plugin. Subclasses set `name` and define hook methods."""

    name: ClassVar[str] = ""
    config_schema: ClassVar[tuple[Key, ...]] = ()
    timeout: ClassVar[float] = 5.0
    failure_policy: ClassVar[str] = "deny"
    notify_queue: ClassVar[int] = 10000
    # Optional, for a plugin that hooks ``client.authorize_publish`` and remembers its answers
    # (an ACL cache): ``allowed_publish(client)`` returns a mapping of the topics the client
    # may publish to, each with the `time.monotonic()` time its allow expires, or None. When
    # the plugin is the first provider there, the core lets a PUBLISH to such a topic through
    # without running the chain (these are not counted as calls). The plugin keeps the
    # mapping current in place: only plain allows (what its hook would answer with a bare
    # OK), and an entry removed or the mapping emptied as soon as that may change.
    allowed_publish: ClassVar[Any] = None
    # Optional, for a plugin that at times can only count the events of its fold hooks dropped (a
    # notification sender without credit): its `actormq.hooks.standin.StandIns`, made in
    # `__init__`. While they are engaged, a chain whose providers all stand in runs them
    # instead of the hooks.
    stand_ins: Any = None

    def __init__(self, settings: Mapping[str, Any] | None = None,
                 context: PluginContext | None = None) -> None:
        self.settings: Mapping[str, Any] = dict(default_settings(type(self)), **(settings or EMPTY))
        self.context = context or PluginContext()

    def start(self) -> Any:
        """Set up (connect to a service, read a file). May be ``async def``."""

    def stop(self) -> Any:
        """Release what `start` took. May be ``async def``."""

    @classmethod
    def hooks(cls) -> dict[HookPoint, str]:
        """The hook points this class hooks, in `HookPoint` order, with the method name.

        Raises TypeError for a method named ``on_...`` that is no hook point, and
        for an ``async def`` at ``message.deliver`` (delivery cannot wait).
        """
        found = {}
        for attr in dir(cls):
            if not attr.startswith("on_") or not callable(getattr(cls, attr)):
                continue
            try:
                point = HookPoint.from_method(attr)
            except KeyError as exc:
                raise TypeError(f"plugin {cls.name or cls.__name__}: {exc.args[0]}") from None
            if point is HookPoint.MESSAGE_DELIVER and inspect.iscoroutinefunction(getattr(cls, attr)):
                raise TypeError(f"plugin {cls.name}: on_message_deliver must not be async "
                                "(delivery to a subscriber cannot wait)")
            found[point] = attr
        return {point: found[point] for point in HookPoint if point in found}

    @classmethod
    def schema(cls) -> tuple[Key, ...]:
        """Every settings key of this plugin: its own schema, then the common keys."""
        own = {key.name for key in cls.config_schema}
        return tuple(cls.config_schema) + tuple(key for key in _common_keys(cls) if key.name not in own)

    @classmethod
    def wanted(cls, config: Any) -> bool:
        """True when this built-in should load although `plugins.order` does not name it
        (e.g. the password-file plugin when ``auth.password_file`` is set)."""
        return False

    def __repr__(self) -> str:
        return f"<plugin {self.name}>"


def _common_keys(cls: type[Plugin]) -> tuple[Key, ...]:
    """COMMON_KEYS with the class's own defaults (its timeout, policy, queue length)."""
    defaults = {"timeout": repr(float(cls.timeout)), "failure_policy": cls.failure_policy,
                "notify_queue": str(cls.notify_queue)}
    return tuple(Key(key.name, key.kind, defaults[key.name], key.doc, key.choices, key.minimum,
                     key.maximum) for key in COMMON_KEYS)


def default_settings(cls: type[Plugin]) -> dict[str, Any]:
    return {key.name: key.default for key in cls.schema()}
