"""The worker side of ``actormq plugin show / enable / disable / reload`` (and
the management API's ``/api/v4/plugins``): admin commands on the control
channel (`actormq.mgmt.commands`), each answered by every worker for its
own `Hooks`.

- ``plugins.list``: EMQX's plugin rows (name, version, description, active, type);
- ``plugins.show``: each plugin in chain order with its hooks, calls,
  failures, timeouts, notify drops, breaker skips and mean / p99 latency;
- ``plugins.enable`` / ``plugins.disable`` ``{"name": ...}``: its hooks
  rejoin / leave the chains (the instance stays loaded and started);
- ``plugins.reload`` ``{"name": ...}``: re-import its module, start a new
  instance with the same settings, swap it in at the same place, stop the
  old one. Clients stay connected; a decision already running finishes on
  the old instance.
"""

from __future__ import annotations

from actormq.hooks.loader import reload_class
from actormq.hooks.plugin import PluginContext, default_settings
from actormq.errors import ConfigError
from actormq.mgmt.commands import CommandError, admin_command


def _loaded(broker, args: dict):
    name = args.get("name")
    if not isinstance(name, str) or not name:
        raise CommandError("give the plugin's name")
    try:
        return broker.hooks.get(name)
    except KeyError as exc:
        raise CommandError(exc.args[0]) from None


@admin_command("plugins.list")
def plugins_list(broker, args: dict) -> list[dict]:
    return [{"name": loaded.plugin.name, "version": getattr(loaded.plugin, "version", ""),
             "description": (type(loaded.plugin).__doc__ or "").strip().split("\n")[0],
             "active": loaded.enabled, "type": "plugin"} for loaded in broker.hooks]


@admin_command("plugins.show")
def plugins_show(broker, args: dict) -> list[dict]:
    return [{"order": index + 1, **row} for index, row in enumerate(broker.hooks.describe())]


@admin_command("plugins.enable")
def plugins_enable(broker, args: dict) -> dict:
    loaded = _loaded(broker, args)
    broker.hooks.enable(loaded.plugin.name)
    return {"name": loaded.plugin.name, "enabled": True}


@admin_command("plugins.disable")
def plugins_disable(broker, args: dict) -> dict:
    loaded = _loaded(broker, args)
    broker.hooks.disable(loaded.plugin.name)
    return {"name": loaded.plugin.name, "enabled": False}


@admin_command("plugins.reload")
async def plugins_reload(broker, args: dict) -> dict:
    loaded = _loaded(broker, args)
    old = loaded.plugin
    try:
        cls = reload_class(type(old), old.name)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    schema = default_settings(cls)
    settings = {**schema, **{key: value for key, value in old.settings.items() if key in schema}}
    new = cls(settings, old.context if isinstance(old.context, PluginContext) else None)
    if not cls.name:
        new.name = old.name
    await broker.hooks.swap(old.name, new)
    return {"name": new.name, "reloaded": True, "module": cls.__module__,
            "hooks": [point.dotted for point in cls.hooks()]}
