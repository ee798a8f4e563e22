"""Brokers with the test plugins of tests/integration/plugins loaded (by plugins.paths)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.integration.brokers import actormq_only

PLUGIN_DIR = Path(__file__).resolve().parent / "plugins"


def plugin_settings(order: str, **settings) -> dict:
    """Broker settings that load `order` from the test plugin directory."""
    actormq_only("actormq plugins")
    return {"plugins.paths": str(PLUGIN_DIR), "plugins.order": order, **settings}


def events(path: Path, wanted, timeout: float = 5.0) -> list[list]:
    """The recorder plugin's events, once `wanted(events)` is true (or fail)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        found = [json.loads(line) for line in lines]
        if wanted(found):
            return found
        assert time.monotonic() < deadline, f"recorded events never matched: {found}"
        time.sleep(0.02)


def worker_ports(broker, workers: int) -> tuple[int, ...]:
    """Each worker's own port (`listener.tcp.worker_ports`), in worker order."""
    line = re.compile(r"worker (\d+) listening on \S+:(\d+)")
    deadline = time.monotonic() + 5
    while len(found := line.findall(broker.stdout())) < workers:
        assert time.monotonic() < deadline, f"no worker lines in the banner:\n{broker.stdout()}"
        time.sleep(0.02)
    return tuple(int(port) for _, port in sorted(found))


def log_with(broker, text: str, timeout: float = 5.0) -> str:
    """The broker's log once it contains `text` (its stderr is read by a thread)."""
    deadline = time.monotonic() + timeout
    while text not in (log := broker.log()):
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{log}"
        time.sleep(0.02)
    return log
