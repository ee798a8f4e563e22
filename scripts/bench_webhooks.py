#!/usr/bin/env python3
"""Webhooks and ExHook side by side with a broker that has none, interleaved A/B rounds:

- QoS 0 fan-in (4 publishers -> 1 subscriber) with no hook, with an `on_publish`
  webhook (a local aiohttp endpoint in its own process), with an ExHook server
  (its own process) that loads `message.delivered` (a notification), and one
  that loads `message.publish` (a decision the broker waits for);
- CONNECT rate (2,000 connections, 50 at a time) with no hook and with an
  `auth_on_register` webhook answering `Cache-Control: max-age=300` (a first
  round fills the cache, the measured round reconnects the same clients).

    python scripts/bench_webhooks.py --rounds 3 --duration 5

Prints a markdown table of medians (and the notifications dropped, read from
the broker's `webhooks.stats` / the ExHook counters are not exported yet).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_suite as suite  # noqa: E402


def serve_http(port: int) -> None:
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        name = request.headers.get("vernemq-hook", "")
        if name.startswith("auth_on_"):
            return web.json_response({"result": "ok"}, headers={"Cache-Control": "max-age=300"})
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    web.run_app(app, host=suite.HOST, port=port, print=None, access_log=None)


def serve_grpc(port: int, hook: str) -> None:
    import grpc
    from actormq.exhook import exhook_pb2 as pb
    from actormq.exhook import exhook_pb2_grpc as pb_grpc

    class Provider(pb_grpc.HookProviderServicer):
        async def OnProviderLoaded(self, request, context):
            return pb.LoadedResponse(hooks=[pb.HookSpec(name=hook)])

        async def OnProviderUnloaded(self, request, context):
            return pb.EmptySuccess()

        async def OnMessageDelivered(self, request, context):
            return pb.EmptySuccess()

        async def OnMessagePublish(self, request, context):
            return pb.ValuedResponse(type=pb.ValuedResponse.IGNORE)

    async def main():
        server = grpc.aio.server()
        pb_grpc.add_HookProviderServicer_to_server(Provider(), server)
        server.add_insecure_port(f"{suite.HOST}:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def helper(*args: str) -> subprocess.Popen:
    """An endpoint or ExHook server process, at the lowest priority: on a small machine it would
    otherwise take the broker's CPU (in production it runs elsewhere)."""
    return subprocess.Popen(["nice", "-n", "19", sys.executable, __file__, *args], cwd=suite.REPO_ROOT,
                            env=suite._env())


def broker(workdir: Path, settings: dict[str, str]) -> suite.Broker:
    port = suite.free_port()
    command = suite.actormq_command(1)(port, workdir)
    for key, value in {"management.listener.http": "0", **settings}.items():
        command += ["--set", f"{key}={value}"]
    started = suite.Broker("actormq-w1", port, workdir)
    started.start(command)
    return started


def fan_in(settings: dict[str, str], duration: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        running = broker(Path(tmp), settings)
        try:
            return suite.fan_in(("-p", running.port), Path(tmp), duration, 0)["rate"]
        finally:
            running.stop()


def conn_rate(settings: dict[str, str], warm: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        running = broker(Path(tmp), settings)
        try:
            target = ("-p", running.port, "--prefix", "conn-")     # the same client ids each round
            if warm:
                suite.connections(target, Path(tmp), running)
            return suite.connections(target, Path(tmp), running)["conn_rate"]
        finally:
            running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--serve-http", type=int)
    parser.add_argument("--serve-grpc", nargs=2)
    args = parser.parse_args()
    if args.serve_http:
        return serve_http(args.serve_http)
    if args.serve_grpc:
        return serve_grpc(int(args.serve_grpc[0]), args.serve_grpc[1])

    http_port, delivered_port, publish_port = (suite.free_port() for _ in range(3))
    helpers = [helper("--serve-http", str(http_port)),
               helper("--serve-grpc", str(delivered_port), "message.delivered"),
               helper("--serve-grpc", str(publish_port), "message.publish")]
    time.sleep(2)
    url = f"http://{suite.HOST}:{http_port}/hook"
    fan_in_cases = {
        "none": {},
        "on_publish webhook": {"webhooks.p.hook": "on_publish", "webhooks.p.endpoint": url},
        "ExHook message.delivered": {"exhook.server.d.url": f"http://{suite.HOST}:{delivered_port}"},
        "ExHook message.publish": {"exhook.server.p.url": f"http://{suite.HOST}:{publish_port}"},
    }
    conn_cases = {
        "none": ({}, False),
        "auth_on_register webhook, cached": ({"webhooks.a.hook": "auth_on_register",
                                              "webhooks.a.endpoint": url}, True),
    }
    results: dict[str, list[float]] = {}
    try:
        for _ in range(args.rounds):
            for name, settings in fan_in_cases.items():
                results.setdefault(f"QoS 0 fan-in, {name}", []).append(fan_in(settings, args.duration))
            for name, (settings, warm) in conn_cases.items():
                results.setdefault(f"CONNECT rate, {name}", []).append(conn_rate(settings, warm))
    finally:
        for process in helpers:
            process.terminate()
    print("| scenario | median (msg/s or conn/s) | rounds |")
    print("|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):,.0f} | {', '.join(f'{v:,.0f}' for v in values)} |")
    print(json.dumps(results), file=sys.stderr)


if __name__ == "__main__":
    main()
