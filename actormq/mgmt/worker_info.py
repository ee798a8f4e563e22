"""Built-in worker-side admin commands about the worker itself."""

from __future__ import annotations

import os

from actormq.mgmt.commands import REGISTRY, admin_command


@admin_command("worker.ping")
def ping(broker, args: dict) -> dict:
    """Proof of life: the worker's pid and the commands it knows."""
    return {"pid": os.getpid(), "commands": REGISTRY.names()}

