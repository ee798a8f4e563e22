#!/usr/bin/env python3
"""What the VerneMQ webhooks plugin costs a worker per event, in process: the plugin on real
hook chains with its real sender process and a local aiohttp endpoint; the best of 5 runs of
20,000 calls each of
- ``message.publish`` with an `on_publish` webhook while the sender gives no credit (dropped),
- the same with credit (handed over: captured, batched, one ZeroMQ send per 25 events),
- ``client.authenticate`` with an `auth_on_register` webhook answered from the auth cache.

With `--path`, the worker's whole read path per message instead (bench_hook_path.py's
`ReadPath`: fan-in PUBLISHes fed 25 at a time to a real Connection on an in-memory
transport, decoded, hooked, routed and delivered): without a hook, with a no-op plugin on
`message.publish`, and with an `on_publish` webhook whose sender has no credit (every event
dropped, as at saturation) or always has (every event handed over, one batch per read):
the best µs per message over interleaved reads and the Python bytecodes executed per
message (the same on a busy machine as on a quiet one).

    python scripts/bench_webhook_worker.py        # µs per event; run it under `chrt -f 20` on a busy machine
    python scripts/bench_webhook_worker.py --path
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "bench_plugins"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiohttp import web  # noqa: E402

from actormq.actors.messages import Message  # noqa: E402
from actormq.conf.load import load_config  # noqa: E402
from actormq.hooks import ClientInfo, Hooks, PluginContext  # noqa: E402
from actormq.webhooks.plugin import VmqWebhooksPlugin  # noqa: E402

CALLS = 20_000
RUNS = 5
PER_TURN = 25


def best_of(run) -> float:
    """µs per call of the fastest of RUNS runs of `run()` (CALLS calls each)."""
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / CALLS * 1e6


async def endpoint() -> tuple[web.AppRunner, int]:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"result": "ok"}, headers={"Cache-Control": "max-age=300"})
    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


async def main() -> None:
    runner, port = await endpoint()
    workdir = Path(tempfile.mkdtemp(prefix="actormq-bench-"))
    (workdir / "actormq.conf").write_text(
        f"storage.dir = {workdir}/data\n"
        f"webhooks.p.hook = on_publish\nwebhooks.p.endpoint = http://127.0.0.1:{port}/p\n"
        f"webhooks.a.hook = auth_on_register\nwebhooks.a.endpoint = http://127.0.0.1:{port}/a\n")
    hooks = Hooks()
    plugin = VmqWebhooksPlugin(context=PluginContext(load_config(workdir / "actormq.conf", env={})))
    hooks.add(plugin)
    await hooks.start()
    await asyncio.wait_for(asyncio.shield(plugin._switch), 30)
    sender = plugin.calls.notifier
    client = ClientInfo("pub-1", "joe", b"pw", "127.0.0.1", 40001, protocol_level=4)
    message = Message("fanin/1", b"x" * 64, 0, False)
    fold, authenticate = hooks.message_publish.fold, hooks.client_authenticate.decide

    def dropped() -> None:
        sender.credit, sender._refreshing = 0, True      # the sender is behind
        for _ in range(CALLS):
            fold(client, message)

    def handed() -> None:
        sender.credit = 10 ** 9
        for _ in range(CALLS // PER_TURN):
            for _ in range(PER_TURN):
                fold(client, message)
            sender._flush()

    first = authenticate(client)
    if isinstance(first, asyncio.Future):
        await first                 # asks the endpoint once: the answer is cached

    def cached() -> None:
        for _ in range(CALLS):
            authenticate(client)

    results = {"on_publish, dropped": best_of(dropped), "on_publish, handed over": best_of(handed),
               "auth_on_register, cached": best_of(cached)}
    sender.credit = 0
    await hooks.stop()
    await runner.cleanup()
    for name, micros in results.items():
        print(f"{name}: {micros:.2f} µs")


def webhook_read_path(credit: int):
    """A ReadPath with an `on_publish` webhook (to an endpoint nobody answers: its sender
    never sends) whose sender has `credit`; and the sender, to flush after each read."""
    from bench_hook_path import ReadPath
    path = ReadPath("", 0)
    workdir = Path(tempfile.mkdtemp(prefix="actormq-bench-"))
    (workdir / "actormq.conf").write_text(f"storage.dir = {workdir}/data\nwebhooks.p.hook = on_publish\n"
                                          "webhooks.p.endpoint = http://127.0.0.1:9/p\n")
    plugin = VmqWebhooksPlugin(context=PluginContext(load_config(workdir / "actormq.conf", env={})))
    hooks = path.core.broker.hooks
    hooks.add(plugin)
    path.core.loop.run_until_complete(hooks.start())
    path.core.loop.run_until_complete(asyncio.wait_for(asyncio.shield(plugin._switch), 30))
    sender = plugin.calls.notifier
    sender.credit, sender._refreshing = credit, not credit
    return path, sender


def read_paths(reads: int) -> None:
    from bench_hook_path import PER_READ, ReadPath
    paths = {"no hook": (ReadPath("", 0), None), "1 no-op plugin on message.publish": (ReadPath("noop", 0), None),
             "on_publish webhook, every event dropped": webhook_read_path(0),
             "on_publish webhook, every event handed over": webhook_read_path(10 ** 9)}

    def read(path, sender) -> None:
        path.read()
        if sender is not None:
            sender._flush()
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(reads):
        for name, (path, sender) in paths.items():     # interleaved: the same load for all
            started = time.perf_counter()
            read(path, sender)
            best[name] = min(best[name], (time.perf_counter() - started) / PER_READ * 1e6)
    counts = {name: path.bytecodes() for name, (path, _) in paths.items()}
    print("| worker's read path, per message | µs (best) | bytecodes | vs no hook |\n|---|---|---|---|")
    for name in paths:
        print(f"| {name} | {best[name]:.2f} | {counts[name]:.0f} | {counts[name] / counts['no hook'] - 1:+.0%} |")
    for path, sender in paths.values():
        if sender is not None:
            sender.credit = 0
            path.core.loop.run_until_complete(path.core.broker.hooks.stop())


if __name__ == "__main__":
    if "--path" in sys.argv[1:]:
        read_paths(2000)
    else:
        asyncio.run(main())
