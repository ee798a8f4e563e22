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
dropped, as at saturation) or always has (every event handed over, one batch per read),
and the same with an ExHook server (bench_webhooks.py's, in its own process) that loads
`message.publish` as a notification, and with one that loads no hook (gRPC in the worker
and nothing hooked): the best µs per message over interleaved reads and the Python
bytecodes executed per message (the same on a busy machine as on a quiet one).

With `--connect`, a worker's whole CONNECT + DISCONNECT instead (a real Connection on an
in-memory transport, from the CONNECT's bytes to the session's end): without a hook, with
a plugin whose `client.authenticate` says ok at once, and with an `auth_on_register`
webhook answered from the auth cache (the endpoint asked once per client id, before the
measured ones); the best µs and the bytecodes per CONNECT, and which functions the
webhook adds bytecodes in. `valgrind --tool=callgrind` over `--connect-only VARIANT N`
at two N gives the machine instructions per CONNECT (the difference over the difference).

    python scripts/bench_webhook_worker.py        # µs per event; run it under `chrt -f 20` on a busy machine
    python scripts/bench_webhook_worker.py --path
    python scripts/bench_webhook_worker.py --connect
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
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
    chain, authenticate = hooks.message_publish, hooks.client_authenticate.decide

    def dropped() -> None:
        sender.grant(0)         # the sender is behind: the chain runs the plugin's stand-in
        fold = chain.fold
        for _ in range(CALLS):
            fold(client, message)

    def handed() -> None:
        sender.grant(10 ** 9)
        fold = chain.fold
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
    sender.grant(0)
    await hooks.stop()
    await runner.cleanup()
    for name, micros in results.items():
        print(f"{name}: {micros:.2f} µs")


def plugin_read_path(plugin_class, lines: str, credit: int, sender_of=lambda plugin: plugin.notifier):
    """A ReadPath with the plugin `plugin_class` makes of the configuration `lines`, once its
    notification sender (`sender_of(plugin)`) is up, with `credit`; and the sender, to flush
    after each read."""
    from bench_hook_path import ReadPath
    path = ReadPath("", 0)
    workdir = Path(tempfile.mkdtemp(prefix="actormq-bench-"))
    (workdir / "actormq.conf").write_text(f"storage.dir = {workdir}/data\n{lines}")
    plugin = plugin_class(context=PluginContext(load_config(workdir / "actormq.conf", env={})))
    hooks = path.core.broker.hooks
    hooks.add(plugin)
    path.core.loop.run_until_complete(hooks.start())
    path.core.loop.run_until_complete(asyncio.wait_for(asyncio.shield(plugin._switch), 30))
    sender = sender_of(plugin)
    sender.grant(credit)
    return path, sender


def webhook_read_path(credit: int):
    """A ReadPath with an `on_publish` webhook (to an endpoint nobody answers: its sender
    never sends) whose sender has `credit`; and the sender."""
    return plugin_read_path(VmqWebhooksPlugin, "webhooks.p.hook = on_publish\n"
                            "webhooks.p.endpoint = http://127.0.0.1:9/p\n", credit, lambda plugin: plugin.calls.notifier)


def exhook_server(hook: str) -> tuple[subprocess.Popen, int]:
    """bench_webhooks.py's ExHook server loading `hook` ("none": no hook), serving."""
    import bench_suite as suite
    from bench_webhooks import wait_serving
    port = suite.free_port()
    counter = Path(tempfile.mkdtemp(prefix="actormq-bench-")) / "received"
    counter.write_bytes(bytes(8))
    server = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parent / "bench_webhooks.py"),
                               "--serve-grpc", str(port), hook, str(counter)], cwd=suite.REPO_ROOT, env=suite._env())
    wait_serving([port])
    return server, port


def exhook_read_path(port: int, credit: int):
    """A ReadPath with the ExHook plugin of the server on `port` (`message.publish` as a
    notification when it loads it) whose sender has `credit`; and the sender."""
    from actormq.exhook.plugin import ExhookPlugin
    return plugin_read_path(ExhookPlugin, f"exhook.server.p.url = http://127.0.0.1:{port}\n"
                            "exhook.server.p.message_publish = notify\n", credit)


def read_paths(reads: int) -> None:
    from bench_hook_path import PER_READ, ReadPath
    servers = {hook: exhook_server(hook) for hook in ("message.publish", "none")}
    publish, loads_none = servers["message.publish"][1], servers["none"][1]
    paths = {"no hook": (ReadPath("", 0), None), "1 no-op plugin on message.publish": (ReadPath("noop", 0), None),
             "on_publish webhook, every event dropped": webhook_read_path(0),
             "on_publish webhook, every event handed over": webhook_read_path(10 ** 9),
             "ExHook message.publish notification, every event dropped": exhook_read_path(publish, 0),
             "ExHook message.publish notification, every event handed over": exhook_read_path(publish, 10 ** 9),
             "ExHook server loading no hook": exhook_read_path(loads_none, 0)}

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
            sender.grant(0)
            path.core.loop.run_until_complete(path.core.broker.hooks.stop())
    for server, _ in servers.values():
        server.terminate()
        server.wait(10)


CONNECT_VARIANTS = ("no hook", "no-op authenticate plugin", "auth_on_register webhook, cached")
CLIENT_IDS = 50


class ConnectPath:
    """One variant's broker core; `connect(n)` makes a client on a fresh connection CONNECT
    (client id n % CLIENT_IDS, clean session) and DISCONNECT, run as a worker's loop runs it."""

    def __init__(self, variant: str) -> None:
        from tests.unit.core_harness import Core
        self.core = core = Core()
        self.endpoint = None
        core.loop.call_later(3600, lambda: None)    # a worker always has timers: the same loop turns
        if variant == CONNECT_VARIANTS[1]:
            from bench_hook_chains import plugin_of
            core.broker.hooks.add(plugin_of("noop_authenticate"))
        elif variant == CONNECT_VARIANTS[2]:
            self.endpoint, port = core.loop.run_until_complete(endpoint())  # its runner
            workdir = Path(tempfile.mkdtemp(prefix="actormq-bench-"))
            (workdir / "actormq.conf").write_text(
                f"storage.dir = {workdir}/data\nwebhooks.a.hook = auth_on_register\n"
                f"webhooks.a.endpoint = http://127.0.0.1:{port}/a\n")
            plugin = VmqWebhooksPlugin(context=PluginContext(load_config(workdir / "actormq.conf", env={})))
            core.broker.hooks.add(plugin)
            core.loop.run_until_complete(core.broker.hooks.start())
        for number in range(CLIENT_IDS):     # each client id asks the endpoint once: cached from then on
            self.connect(number)
            core.settle(0.02)

    def connect(self, number: int) -> None:
        from actormq.transport.codec import Connect, Disconnect, encode
        from tests.unit.core_harness import Client
        client = Client(self.core, 4, port=40000 + number % 20000)
        connect = encode(Connect(f"conn-{number % CLIENT_IDS}", protocol_level=4), 4)

        async def run() -> None:
            client.conn.data_received(connect)
            await asyncio.sleep(0)
            client.conn.data_received(encode(Disconnect(), 4))
            await asyncio.sleep(0)
        self.core.loop.run_until_complete(run())

    def close(self) -> None:
        loop = self.core.loop
        loop.run_until_complete(self.core.broker.hooks.stop())
        if self.endpoint is not None:
            loop.run_until_complete(self.endpoint.cleanup())

    def micros(self, count: int) -> float:
        started = time.perf_counter()
        for number in range(count):
            self.connect(number)
        return (time.perf_counter() - started) / count * 1e6

    def bytecodes(self, count: int = 20) -> Counter:
        """Bytecodes per CONNECT by function."""
        executed: Counter = Counter()

        def trace(frame, event, _arg):
            if event == "call":
                frame.f_trace_opcodes = True
            elif event == "opcode":
                code = frame.f_code
                executed[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
            return trace
        for number in range(count):
            sys.settrace(trace)
            try:
                self.connect(number)
            finally:
                sys.settrace(None)
        return Counter({name: value / count for name, value in executed.items()})


def connect_paths(rounds: int) -> None:
    from actormq.gctune import tune_gc
    paths = {variant: ConnectPath(variant) for variant in CONNECT_VARIANTS}
    tune_gc()                   # as a worker runs
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(rounds):
        for variant, path in paths.items():     # interleaved: the same load for all
            best[variant] = min(best[variant], path.micros(50))
    counts = {variant: path.bytecodes() for variant, path in paths.items()}
    for path in paths.values():
        path.close()
    none = sum(counts[CONNECT_VARIANTS[0]].values())
    print("| CONNECT + DISCONNECT in process | µs (best) | bytecodes | vs no hook |\n|---|---|---|---|")
    for variant in paths:
        total = sum(counts[variant].values())
        print(f"| {variant} | {best[variant]:.1f} | {total:.0f} | {total / none - 1:+.0%} |")
    added = counts[CONNECT_VARIANTS[2]] - counts[CONNECT_VARIANTS[0]]
    print("\nbytecodes the cached webhook adds, by function:",
          ", ".join(f"{name} {value:.0f}" for name, value in added.most_common(12) if value >= 1))


def connect_only(variant: str, count: int) -> None:
    """`count` CONNECTs of one variant after its set-up, then exit (for callgrind)."""
    from actormq.gctune import tune_gc
    path = ConnectPath(variant)
    tune_gc()
    for number in range(count):
        path.connect(number)
    os._exit(0)


if __name__ == "__main__":
    if "--path" in sys.argv[1:]:
        read_paths(2000)
    elif "--connect" in sys.argv[1:]:
        connect_paths(200)
    elif "--connect-only" in sys.argv[1:]:
        where = sys.argv.index("--connect-only")
        connect_only(CONNECT_VARIANTS[int(sys.argv[where + 1])], int(sys.argv[where + 2]))
    else:
        asyncio.run(main())
