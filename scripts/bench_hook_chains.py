#!/usr/bin/env python3
"""What the hook chains themselves cost per message, in process (no sockets, no
broker): for each variant of bench_hooks.py, the chain runs of one fan-in
message (``message.publish`` fold + one ``message.deliver`` fold, or the
``client.authorize_publish`` decision) with the plugins of scripts/bench_plugins,
best of `--repeat` timings. Steadier than the broker's rate on a busy machine.

    python scripts/bench_hook_chains.py --messages 200000
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS.parent))
sys.path.insert(0, str(SCRIPTS / "bench_plugins"))

from actormq.hooks import Plugin  # noqa: E402
from actormq.hooks.registry import Hooks  # noqa: E402
from actormq.message import Message  # noqa: E402
from bench_hooks import VARIANTS  # noqa: E402


def plugin_of(module_name: str) -> Plugin:
    module = importlib.import_module(module_name)
    (cls,) = [value for value in vars(module).values() if isinstance(value, type)
              and issubclass(value, Plugin) and value.__module__ == module.__name__]
    plugin = cls()
    plugin.start()
    return plugin


def hook_work(hooks: Hooks, message: Message):
    """The chain runs the broker makes for one message of the fan-in."""
    publish, deliver, authorize = hooks.message_publish, hooks.message_deliver, \
        hooks.client_authorize_publish

    def one() -> None:
        if authorize is not None:
            authorize.decide("client", message)
        if publish is not None:
            publish.fold("client", message)
        if deliver is not None:
            deliver.fold("subscriber", message)
    return one


async def micros_per_message(order: str, messages: int, repeat: int) -> float:
    hooks = Hooks()
    for name in filter(None, (name.strip() for name in order.split(","))):
        hooks.add(plugin_of(name))
    one = hook_work(hooks, Message("fanin/1", bytes(64), 0, False))
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(messages):
            one()
        best = min(best, time.perf_counter() - started)
    return best / messages * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print("| plugins | hook chains, µs per message |\n|---|---|")
    for name, order in VARIANTS.items():
        micros = asyncio.run(micros_per_message(order, args.messages, args.repeat))
        print(f"| {name} | {micros:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
