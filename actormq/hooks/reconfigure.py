"""Plugin settings on a config reload (SIGHUP).

The node checks the reloaded config's ``plugin.<name>.<key>`` values
against each plugin's schema before it sends the config to the workers (a
bad value keeps the running config, and the log names the file, line and
key). Each worker then compares every loaded plugin's settings with the new
ones; a plugin whose settings changed gets a new instance of its class with
them — started, swapped in at its place in the chains, the old one stopped:
``actormq plugin reload`` without re-importing the module, so whatever its
`start` derives from the settings is derived anew. Clients stay connected;
a decision already running finishes on the old instance. A new instance
whose `start` fails leaves the old one in place (logged).

`plugins.order` and `plugins.paths` (which plugins load) need a restart.
"""

from __future__ import annotations

import asyncio
import logging

from actormq.hooks.loader import PluginSpec, checked_settings, instantiate
from actormq.hooks.plugin import Plugin, PluginContext

log = logging.getLogger("actormq.hooks")

SETTINGS_PREFIX = "plugin."


def watch_settings(broker, worker: int) -> None:
    """Apply the changed ``plugin.<name>.*`` keys of the loaded plugins on every config
    reload (settings of a plugin that is not loaded need a restart, as its loading does)."""
    running: set[asyncio.Task] = set()

    def reloaded(config) -> None:
        task = asyncio.get_running_loop().create_task(apply_settings(broker.hooks, config, worker))
        running.add(task)
        task.add_done_callback(running.discard)
    keys = tuple(f"{SETTINGS_PREFIX}{name}." for name in broker.hooks.names())
    if keys:
        broker.reloader.on_reload(keys, reloaded)


def changed_settings(hooks, config) -> list[tuple[Plugin, dict]]:
    """Each loaded plugin whose settings differ under `config`, with its new settings."""
    changed = []
    for loaded in hooks:
        plugin = loaded.plugin
        settings = checked_settings(plugin.name, type(plugin), config)
        if settings != dict(plugin.settings):
            changed.append((plugin, settings))
    return changed


async def apply_settings(hooks, config, worker: int) -> list[str]:
    """Swap in a new instance of every plugin whose settings changed; returns their names."""
    applied = []
    for old, settings in changed_settings(hooks, config):
        keys = ", ".join(sorted(key for key in settings if settings[key] != old.settings.get(key)))
        new = instantiate(PluginSpec(old.name, type(old), settings, "reload"),
                          PluginContext(config, worker))
        try:
            await hooks.swap(old.name, new)
        except Exception as exc:    # the plugin's start: its old instance goes on
            log.error("plugin %s: new settings (%s) not applied, its start failed: %s: %s",
                      old.name, keys, type(exc).__name__, exc)
            continue
        log.info("plugin %s: settings reloaded (%s)", old.name, keys)
        applied.append(old.name)
    return applied
