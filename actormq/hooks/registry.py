"""The registry of one worker: its plugins in order and one chain per hook point.

`Hooks` holds the plugin instances in `plugins.order` (first = outermost:
it runs first at every point and so has the most control, as Gmqtt's
``plugin_order``) and, for each `HookPoint`, an attribute named after the
point (``hooks.message_publish``, ``hooks.client_authenticate``, ...) that is
**None when no plugin hooks it** or the `Chain` to run. That is the whole
cost of the hooks on the hot path when nothing is loaded: one attribute
read and an ``is None`` test (`active`: some plugin hooks something;
`publish_hooked`: a PUBLISH has a decide or fold chain to run; `opened_hooked`: an
accepted CONNECT has a notification to send (session created or resumed, CONNACK,
connected, wakeup); `closed_hooked`: a closed connection has one (disconnected, offline,
gone); `publish_folds`: the
``message.publish`` chain when it is the only one (the common shape, which the
Connection runs inline); `allowed_publish`:
the memo of allowed topics the first authorization provider offers, see
`Plugin.allowed_publish`)::

    chain = hooks.message_publish
    if chain is not None:
        message = chain.fold(client, message)

Built-ins and user plugins register the same way: `add` (in order),
`remove`, `disable` / `enable` (the plugin stays loaded, its hooks leave or
rejoin the chains in their place), `replace` / `swap` (a reload: the new
instance takes the old one's place and counters; clients stay connected). Every
change rebuilds the chains, so the core sees it at the next call.

A plugin with stand-ins (`Plugin.stand_ins`, see `actormq.hooks.standin`) is told the fold
chains it is in at every rebuild: engaging them swaps those chains' ``fold``.

Decide chains end in a default when every provider says next:
``plugins.default.<point>`` (`DECIDE_DEFAULT_KEYS`) — deny for
authentication, allow for authorization and unsubscribe, as EMQX's
``authorization.no_match = allow``. An empty chain is None: allowed, free.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

from actormq.hooks.chains import Chain, Provider, chain_of
from actormq.hooks.health import Breaker, BreakerSettings, PluginStats
from actormq.hooks.notify import NotifyQueue
from actormq.hooks.plugin import Plugin
from actormq.hooks.points import HookPoint, Mode
from actormq.hooks.results import Decision

SERVER_UNAVAILABLE = 0x88
NOT_AUTHORIZED = 0x87
BAD_USER_NAME_OR_PASSWORD = 0x86

_CONNECT_POINTS = (HookPoint.CLIENT_AUTHENTICATE, HookPoint.CLIENT_ENHANCED_AUTH)


def default_key(point: HookPoint) -> str:
    """The config key of a decide point's default: ``plugins.default.authenticate``, ..."""
    return "plugins.default." + point.dotted.split(".", 1)[1]


DECIDE_DEFAULTS = {
    HookPoint.CLIENT_AUTHENTICATE: "deny",
    HookPoint.CLIENT_ENHANCED_AUTH: "deny",
    HookPoint.CLIENT_AUTHORIZE_PUBLISH: "allow",
    HookPoint.CLIENT_AUTHORIZE_SUBSCRIBE: "allow",
    HookPoint.CLIENT_UNSUBSCRIBE: "allow",
}
DECIDE_DEFAULT_KEYS = {point: default_key(point) for point in DECIDE_DEFAULTS}


def _default_decision(point: HookPoint, word: str) -> Decision:
    if word == "allow":
        return Decision(True, decided_by="default")
    code = BAD_USER_NAME_OR_PASSWORD if point in _CONNECT_POINTS else NOT_AUTHORIZED
    return Decision(False, code, "no plugin allowed it", decided_by="default")


@dataclass(slots=True)
class Loaded:
    """One plugin in the registry: the instance, its health, whether its hooks run."""

    plugin: Plugin
    point_stats: dict          # hook point -> PluginStats of the plugin there
    breaker: Breaker
    queue: NotifyQueue
    enabled: bool = True
    points: dict = field(default_factory=dict)

    @property
    def stats(self) -> PluginStats:
        """The plugin's totals over its hook points."""
        return PluginStats.summed(self.point_stats.values())


class Hooks:
    """One worker's plugins in order and a chain (or None) per hook point."""

    __slots__ = tuple(point.attribute for point in HookPoint) + (
        "active", "publish_hooked", "opened_hooked", "closed_hooked", "publish_folds", "allowed_publish", "_loaded", "_defaults",
        "_breaker_settings")

    def __init__(self, defaults: Mapping[HookPoint, str] | None = None,
                 breaker: BreakerSettings = BreakerSettings()) -> None:
        self._loaded: list[Loaded] = []
        self._defaults = {point: _default_decision(point, word)
                          for point, word in {**DECIDE_DEFAULTS, **(defaults or {})}.items()}
        self._breaker_settings = breaker
        self._rebuild()

    # -- what is loaded ------------------------------------------------------------------

    def __iter__(self):
        return iter(self._loaded)

    def names(self) -> list[str]:
        return [loaded.plugin.name for loaded in self._loaded]

    def get(self, name: str) -> Loaded:
        for loaded in self._loaded:
            if loaded.plugin.name == name:
                return loaded
        raise KeyError(f"no plugin named {name!r} is loaded (loaded: {', '.join(self.names()) or 'none'})")

    def chain(self, point: HookPoint) -> Chain | None:
        return getattr(self, point.attribute)

    # -- changing it -----------------------------------------------------------------------

    def add(self, plugin: Plugin, position: int | None = None) -> None:
        """Register a plugin instance (built-in or loaded); last unless `position` is given."""
        if not plugin.name:
            raise ValueError(f"plugin class {type(plugin).__name__} has no name")
        if plugin.name in self.names():
            raise ValueError(f"plugin {plugin.name!r} is already loaded")
        points = type(plugin).hooks()
        point_stats = {point: PluginStats() for point in points}
        loaded = Loaded(plugin, point_stats, Breaker(plugin.name, self._breaker_settings, point_stats),
                        NotifyQueue(int(plugin.settings["notify_queue"])), points=points)
        self._loaded.insert(len(self._loaded) if position is None else position, loaded)
        self._rebuild()

    def remove(self, name: str) -> Plugin:
        loaded = self.get(name)
        self._loaded.remove(loaded)
        loaded.queue.close()
        self._rebuild()
        return loaded.plugin

    def enable(self, name: str) -> None:
        self.get(name).enabled = True
        self._rebuild()

    def disable(self, name: str) -> None:
        self.get(name).enabled = False
        self._rebuild()

    def replace(self, name: str, plugin: Plugin) -> Plugin:
        """Swap a new instance in at the old one's place, keeping counters and enabled state."""
        loaded = self.get(name)
        old = loaded.plugin
        loaded.plugin = plugin
        loaded.points = type(plugin).hooks()
        loaded.queue.limit = int(plugin.settings["notify_queue"])
        self._rebuild()
        return old

    async def swap(self, name: str, plugin: Plugin) -> Plugin:
        """Start a new instance, `replace` the old one with it, stop the old one (a reload:
        clients stay connected; a decision already running finishes on the old instance).
        When the new one's `start` fails, the old one stays and the error is raised."""
        await call_maybe_async(plugin.start)
        old = self.replace(name, plugin)
        await call_maybe_async(old.stop)
        return old

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Run every plugin's `start`, in order (awaited when async)."""
        for loaded in self._loaded:
            await call_maybe_async(loaded.plugin.start)

    async def stop(self) -> None:
        """Let queued notify events run, then every plugin's `stop`, in reverse order."""
        for loaded in reversed(self._loaded):
            await loaded.queue.drain()
            loaded.queue.close()
            await call_maybe_async(loaded.plugin.stop)

    def settle(self) -> None:
        """Bring every plugin's call counts up to date (the chains count runs, see
        `Chain.settle`)."""
        for point in HookPoint:
            chain = getattr(self, point.attribute)
            if isinstance(chain, Chain):
                chain.settle()

    def describe(self) -> list[dict]:
        """What ``actormq plugin show`` prints: each plugin in order, its hooks and health
        (latency sampled on one run of a chain in `SAMPLE_EVERY`)."""
        self.settle()
        return [{"name": loaded.plugin.name, "enabled": loaded.enabled,
                 "module": type(loaded.plugin).__module__,
                 "hooks": [point.dotted for point in loaded.points],
                 **loaded.stats.as_dict(),
                 "points": {point.dotted: stats.as_dict() for point, stats in loaded.point_stats.items()}}
                for loaded in self._loaded]

    def _rebuild(self) -> None:
        if hasattr(self, "active"):
            self.settle()
        for loaded in self._loaded:
            loaded.breaker.chains.clear()
            if loaded.plugin.stand_ins is not None:
                loaded.plugin.stand_ins.chains.clear()
        for point in HookPoint:
            providers = tuple(self._provider(loaded, point) for loaded in self._loaded
                              if loaded.enabled and point in loaded.points)
            setattr(self, point.attribute, chain_of(
                point, providers, self._defaults.get(point, Decision(True)),
                SERVER_UNAVAILABLE if point in _CONNECT_POINTS else NOT_AUTHORIZED)
                if providers else None)
        for point in HookPoint:
            chain = getattr(self, point.attribute)
            for provider in chain.providers if chain is not None else ():
                provider.breaker.chains.append(chain)
                if provider.stand_ins is not None and point.mode is Mode.FOLD:
                    provider.stand_ins.chains.append(chain)
        self.active = any(loaded.enabled and loaded.points for loaded in self._loaded)
        first = next((loaded.plugin for loaded in self._loaded if loaded.enabled
                      and HookPoint.CLIENT_AUTHORIZE_PUBLISH in loaded.points), None)
        self.allowed_publish = getattr(first, "allowed_publish", None)
        self.publish_hooked = self.client_authorize_publish is not None or \
            self.message_publish is not None
        self.publish_folds = self.message_publish if self.client_authorize_publish is None else None
        self.opened_hooked = any(chain is not None for chain in (
            self.session_created, self.session_resumed, self.client_connack, self.client_connected,
            self.client_wakeup))
        self.closed_hooked = any(chain is not None for chain in (
            self.client_disconnected, self.client_offline, self.client_gone))

    @staticmethod
    def _provider(loaded: Loaded, point: HookPoint) -> Provider:
        plugin = loaded.plugin
        settings = plugin.settings
        return Provider(plugin.name, point, getattr(plugin, loaded.points[point]),
                        float(settings["timeout"]), settings["failure_policy"],
                        loaded.point_stats.setdefault(point, PluginStats()),
                        loaded.breaker, loaded.queue if point.mode is Mode.NOTIFY else None,
                        plugin.stand_ins)


async def call_maybe_async(fn, *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
