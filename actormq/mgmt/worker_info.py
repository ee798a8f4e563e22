"""Built-in worker-side admin commands about the worker itself."""

from __future__ import annotations

import os

from actormq.mgmt.commands import REGISTRY, admin_command


@admin_command("worker.ping")
def ping(broker, args: dict) -> dict:
    """Proof of life: the worker's pid and the commands it knows."""
    return {"pid": os.getpid(), "commands": REGISTRY.names()}


def _description(plugin) -> str:
    doc = (type(plugin).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


@admin_command("plugins.describe")
def plugins(broker, args: dict) -> list[dict]:
    """The worker's plugins in order, in EMQX 4's plugin fields plus their hooks and health."""
    from actormq import __version__
    rows = []
    by_name = {loaded.plugin.name: loaded.plugin for loaded in broker.hooks}
    for row in broker.hooks.describe():
        plugin = by_name[row["name"]]
        rows.append({"name": row["name"], "version": getattr(plugin, "version", None) or __version__,
                     "description": _description(plugin), "active": row["enabled"],
                     "type": getattr(plugin, "type", None) or "feature"} | row)
    return rows
