"""Worker-side admin commands of the webhooks (answered over the control channel).

- ``webhooks.reload``: re-read the registrations (config + data dir) now; a
  hook point that gains or loses its last webhook is hooked / unhooked by
  swapping in a rebuilt plugin (the auth cache is kept).
- ``webhooks.cache.show``: rows {stat, endpoint, hook, value} of the auth cache.
- ``webhooks.cache.clear``: empty the auth cache.
- ``webhooks.stats``: requests, errors, notifications sent / failed / dropped.

A worker without the webhooks plugin answers with no rows.
"""

from __future__ import annotations

from actormq.hooks.plugin import PluginContext
from actormq.mgmt.commands import admin_command
from actormq.webhooks.plugin import VmqWebhooksPlugin, plugin_class, point_of

PLUGIN_NAME = VmqWebhooksPlugin.name


def _registry(broker):
    return getattr(broker, "hooks", None)


def _plugin(broker) -> VmqWebhooksPlugin | None:
    hooks = _registry(broker)
    if hooks is None or PLUGIN_NAME not in hooks.names():
        return None
    return hooks.get(PLUGIN_NAME).plugin


@admin_command("webhooks.reload")
async def reload_webhooks(broker, args: dict):
    hooks = _registry(broker)
    if hooks is None:
        return []
    old = _plugin(broker)
    if old is None:
        config = getattr(broker, "config", None)
        plugin = VmqWebhooksPlugin(context=PluginContext(config, getattr(broker, "worker_id", 0)))
        await plugin.start()
        hooks.add(plugin)
        return [{"webhooks": len(plugin.calls.webhooks())}]
    wanted = {point_of(webhook.hook) for webhook in old.registrations()}
    if wanted == set(type(old).hooks()):
        old.reload_registrations()
        return [{"webhooks": len(old.calls.webhooks())}]
    new = plugin_class({webhook.hook for webhook in old.registrations()})(old.settings, old.context)
    new.calls.cache = old.calls.cache
    await new.start()
    hooks.replace(PLUGIN_NAME, new)
    await old.stop()
    return [{"webhooks": len(new.calls.webhooks())}]


@admin_command("webhooks.cache.show")
def cache_show(broker, args: dict):
    plugin = _plugin(broker)
    return plugin.calls.cache.stats() if plugin else []


@admin_command("webhooks.cache.clear")
def cache_clear(broker, args: dict):
    plugin = _plugin(broker)
    if plugin:
        plugin.calls.cache.clear()
    return []


@admin_command("webhooks.stats")
def stats(broker, args: dict):
    plugin = _plugin(broker)
    return plugin.calls.stats() if plugin else []
