"""Helpers of the auth provider tests: a real `Hooks` registry with auth plugins
on a config, and the answer of a chain whether it decided now or later."""

from __future__ import annotations

import asyncio

from actormq.conf import default_config
from actormq.hooks import Hooks, PluginContext


def make_hooks(*plugin_classes, **settings) -> Hooks:
    config = default_config().with_overrides(settings)
    hooks = Hooks()
    for cls in plugin_classes:
        hooks.add(cls(context=PluginContext(config=config)))
    return hooks


async def decide(chain, *args):
    answer = chain.decide(*args)
    return await answer if asyncio.isfuture(answer) else answer
