"""Plugin settings on a config reload: only plugins whose `plugin.<name>.*` keys
changed get a new instance (started, swapped in at their place, the old one
stopped, counters kept); a new instance whose start fails leaves the old one."""

from __future__ import annotations

import asyncio

from actormq.conf import load_config
from actormq.conf.keytypes import Key, Kind
from actormq.hooks import Plugin
from actormq.hooks.loader import PluginSpec, build_hooks, checked_settings
from actormq.hooks.reconfigure import apply_settings

STOPPED: list[str] = []


class Limit(Plugin):
    name = "limit"
    config_schema = (Key("size", Kind.BYTESIZE, "1KB", "Largest payload."),)

    def start(self) -> None:
        if self.settings["size"] == 13:
            raise RuntimeError("unlucky size")

    def stop(self) -> None:
        STOPPED.append(f"{self.name}:{self.settings['size']}")

    def on_message_publish(self, client, message):
        return None


class Other(Plugin):
    name = "other"

    def on_message_deliver(self, client_id, message):
        return None


def config(**settings: str):
    return load_config(env={}, overrides={"plugins.order": "", **settings})


def hooks_for(cfg):
    return build_hooks(cfg, [PluginSpec(cls.name, cls, checked_settings(cls.name, cls, cfg), "test")
                             for cls in (Limit, Other)])


def test_only_the_changed_plugin_is_swapped_in_place_with_its_counters():
    STOPPED.clear()
    hooks = hooks_for(config(**{"plugin.limit.size": "2KB"}))
    old_limit, old_other = (loaded.plugin for loaded in hooks)
    hooks.message_publish.fold("c", "message")
    applied = asyncio.run(apply_settings(hooks, config(**{"plugin.limit.size": "4KB"}), 0))
    assert applied == ["limit"]
    new_limit, other = (loaded.plugin for loaded in hooks)
    assert new_limit is not old_limit and new_limit.settings["size"] == 4096
    assert other is old_other
    assert STOPPED == ["limit:2048"]
    assert hooks.get("limit").point_stats and hooks.describe()[0]["calls"] == 1
    assert hooks.message_publish.providers[0].fn.__self__ is new_limit


def test_nothing_changes_when_the_settings_are_the_same():
    hooks = hooks_for(config(**{"plugin.limit.size": "2KB"}))
    before = [loaded.plugin for loaded in hooks]
    assert asyncio.run(apply_settings(hooks, config(**{"plugin.limit.size": "2048"}), 0)) == []
    assert [loaded.plugin for loaded in hooks] == before


def test_a_new_instance_that_fails_to_start_leaves_the_old_one(caplog):
    STOPPED.clear()
    hooks = hooks_for(config())
    old = hooks.get("limit").plugin
    assert asyncio.run(apply_settings(hooks, config(**{"plugin.limit.size": "13"}), 0)) == []
    assert hooks.get("limit").plugin is old and STOPPED == []
    assert "plugin limit: new settings (size) not applied, its start failed: RuntimeError: unlucky size" \
        in caplog.text


def test_a_changed_notify_queue_length_applies_to_the_plugin_queue():
    hooks = hooks_for(config())
    asyncio.run(apply_settings(hooks, config(**{"plugin.other.notify_queue": "7"}), 0))
    assert hooks.get("other").queue.limit == 7
