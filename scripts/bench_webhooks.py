#!/usr/bin/env python3
"""Webhooks and ExHook side by side with a broker that has none, interleaved A/B rounds:

- QoS 0 fan-in (4 publishers -> 1 subscriber) with no hook, with an `on_publish`
  webhook (a local aiohttp endpoint in its own process), with an ExHook server
  (its own process) that loads `message.publish` sent as a notification
  (`exhook.server.<name>.message_publish = notify`), one that loads
  `message.delivered` (always a notification), and one that loads
  `message.publish` as EMQX does (a decision each message waits for: run in
  the first round only, and not with `--rate`);
- CONNECT rate (2,000 connections, 50 at a time) with no hook and with an
  `auth_on_register` webhook answering `Cache-Control: max-age=300` (a first
  round fills the cache, the measured round reconnects the same clients; the case
  without a hook runs the same two rounds).

    python scripts/bench_webhooks.py                 # about 3 minutes on a quiet machine
    python scripts/bench_webhooks.py --rate 20000    # broker CPU per message at a fixed rate

A broker with hooks is measured once its notification sender process is up
(`senders_ready`): while it starts, the worker sends the notifications itself.

Prints a markdown table: per scenario the median over the rounds and its ratio
to the same measure without a hook. As fast as the broker goes, the measure is
msg/s (conn/s); with `--rate` every publisher set offers that many msg/s and
the measure is the worker's CPU µs per message received (steady on a busy
machine), with the notification sender's CPU beside it. The notifications the
sender dropped (it sends what it can and counts the rest) are in the last column.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_suite as suite  # noqa: E402

SENDER_MODULE = "actormq.webhooks.sender"


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


def serve_grpc(port: int, hook: str, delay_ms: float = 0.0) -> None:
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
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            return pb.ValuedResponse(type=pb.ValuedResponse.IGNORE)

    async def main():
        server = grpc.aio.server()
        pb_grpc.add_HookProviderServicer_to_server(Provider(), server)
        server.add_insecure_port(f"{suite.HOST}:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def helper(*args: str, lowest: bool = True) -> subprocess.Popen:
    """An endpoint or ExHook server process, at the lowest priority (and never real-time, when
    the bench runs under `chrt`): on a small machine it would otherwise take the broker's CPU
    (in production it runs elsewhere). Not `lowest`: at the bench's own priority, for a
    server every message waits for."""
    if not lowest:
        return subprocess.Popen([sys.executable, __file__, *args], cwd=suite.REPO_ROOT, env=suite._env())
    return subprocess.Popen(["nice", "-n", "19", sys.executable, __file__, *args], cwd=suite.REPO_ROOT,
                            env=suite._env(), preexec_fn=_not_real_time)


def wait_serving(ports: list[int], timeout_s: float = 30.0) -> None:
    """Until every ExHook server answers OnProviderLoaded: a broker started before that would
    refuse its clients (exhook.request_failed_action = deny) until it reconnects."""
    import grpc
    from actormq.exhook import exhook_pb2 as pb
    from actormq.exhook import exhook_pb2_grpc as pb_grpc
    for port in ports:
        with grpc.insecure_channel(f"{suite.HOST}:{port}") as channel:
            pb_grpc.HookProviderStub(channel).OnProviderLoaded(pb.ProviderLoadedRequest(), timeout=timeout_s,
                                                               wait_for_ready=True)


def _not_real_time() -> None:
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def broker(workdir: Path, settings: dict[str, str]) -> suite.Broker:
    port = suite.free_port()
    command = suite.actormq_command(1)(port, workdir, {})
    for key, value in {"management.listener.http": "0", **settings}.items():
        command += ["--set", f"{key}={value}"]
    started = suite.Broker("actormq-w1", port, workdir)
    started.start(command)
    return started


def cpu_split(running: suite.Broker) -> tuple[float, float]:
    """CPU seconds so far of the broker's own processes and of its notification senders."""
    own = senders = 0.0
    for process in running.processes():
        try:
            seconds = sum(process.cpu_times()[:2])
            if SENDER_MODULE in " ".join(process.cmdline()):
                senders += seconds
            else:
                own += seconds
        except psutil.Error:
            continue
    return own, senders


def senders_ready(running: suite.Broker, timeout_s: float = 20.0) -> None:
    """Until the broker's notification senders are up (each lowers its priority once it is):
    until then the worker sends notifications itself, which is start-up, not the steady
    state measured here."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            senders = [process for process in running.processes()
                       if SENDER_MODULE in " ".join(process.cmdline())]
            if senders and all(process.nice() > 0 for process in senders):
                return
        except psutil.Error:
            pass
        time.sleep(0.05)


def fan_in(settings: dict[str, str], duration: float, rate: float | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        running = broker(workdir, settings)
        if settings:
            senders_ready(running)
        try:
            target = ("-p", running.port)
            sub = suite.start_subscriber(workdir, *target, "-t", "fanin/#", "-q", 0,
                                         "-d", duration + suite.DRAIN_GRACE, "--idle", 1)
            own, senders = cpu_split(running)
            pace = ("-r", rate) if rate else ()
            suite.Run(["pub", *target, "-c", 4, "-t", "fanin/%i", "-q", 0, "-s", 64, "--window", 100,
                       "-d", duration, *pace]).result(duration + 60)
            received = sub.result(90)
            own_after, senders_after = cpu_split(running)
        finally:
            running.stop()
        count = max(1, received["received"])
        return {"rate": received["rate"], "cpu_us": (own_after - own) / count * 1e6,
                "sender_us": (senders_after - senders) / count * 1e6,
                "dropped": dropped_notifications(workdir) / count}


def dropped_notifications(workdir: Path) -> int:
    """The notifications the broker logged as dropped (it does at stop)."""
    log = workdir / "broker.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return sum(int(count) for count in re.findall(r"(\d+) notifications dropped", text))


def conn_rate(settings: dict[str, str]) -> dict:
    """A first round of the same clients (it fills the auth cache), then the measured one:
    with a webhook and without one alike."""
    with tempfile.TemporaryDirectory() as tmp:
        running = broker(Path(tmp), settings)
        try:
            target = ("-p", running.port, "--prefix", "conn-")     # the same client ids each round
            suite.connections(target, Path(tmp), running)
            own, _ = cpu_split(running)
            result = suite.connections(target, Path(tmp), running)
            own_after, _ = cpu_split(running)
            return {"rate": result["conn_rate"], "cpu_us": (own_after - own) / suite.CONNECTIONS * 1e6,
                    "sender_us": 0.0, "dropped": 0.0}
        finally:
            running.stop()


DECISION_CASE = "as decision (EMQX)"


def cases(http_port: int, grpc_ports: dict[str, int]) -> dict[str, tuple]:
    url = f"http://{suite.HOST}:{http_port}/hook"

    def exhook(name: str, **extra: str) -> dict[str, str]:
        settings = {f"exhook.server.{name}.url": f"http://{suite.HOST}:{grpc_ports[name]}"}
        return settings | {f"exhook.server.{name}.{key}": value for key, value in extra.items()}

    return {
        "QoS 0 fan-in, none": ("fan_in", {}),
        "QoS 0 fan-in, on_publish webhook": ("fan_in", {"webhooks.p.hook": "on_publish",
                                                        "webhooks.p.endpoint": url}),
        "QoS 0 fan-in, ExHook message.publish as notification": (
            "fan_in", exhook("publish", message_publish="notify")),
        "QoS 0 fan-in, ExHook message.delivered": ("fan_in", exhook("delivered")),
        "QoS 0 fan-in, ExHook message.publish as decision (EMQX)": ("fan_in", exhook("decide")),
        "CONNECT rate, none": ("conn", {}),
        "CONNECT rate, auth_on_register webhook, cached": ("conn", {"webhooks.a.hook": "auth_on_register",
                                                                    "webhooks.a.endpoint": url}),
    }


def table(results: dict[str, list[dict]], rate: float | None) -> str:
    measure = "worker CPU µs/msg" if rate else "msg/s (conn/s)"
    key = "cpu_us" if rate else "rate"
    lines = [f"| scenario | {measure}, median | ratio to none | rounds | sender CPU µs/msg | notifications dropped |",
             "|---|---|---|---|---|---|"]
    baselines = {"QoS": results.get("QoS 0 fan-in, none"), "CONNECT": results.get("CONNECT rate, none")}
    for name, rounds in results.items():
        value = statistics.median(r[key] for r in rounds)
        base = baselines[name.split()[0]]
        base_value = statistics.median(r[key] for r in base) if base else None
        ratio = (value / base_value if not rate else base_value / value) if base_value else float("nan")
        sender = statistics.median(r["sender_us"] for r in rounds)
        dropped = statistics.median(r["dropped"] for r in rounds)
        lines.append(f"| {name} | {value:,.1f} | {ratio:.2f}× | {', '.join(f'{r[key]:,.1f}' for r in rounds)} "
                     f"| {sender:,.1f} | {dropped:.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rate", type=float, default=None,
                        help="offer this many msg/s (all publishers) and compare CPU per message")
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains this")
    parser.add_argument("--serve-http", type=int)
    parser.add_argument("--serve-grpc", nargs="+", metavar="PORT HOOK [DELAY_MS]")
    args = parser.parse_args()
    if args.serve_http:
        return serve_http(args.serve_http)
    if args.serve_grpc:
        return serve_grpc(int(args.serve_grpc[0]), args.serve_grpc[1], *map(float, args.serve_grpc[2:]))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))     # stopped (timeout): stop the helpers too
    http_port = suite.free_port()
    grpc_ports = {"publish": suite.free_port(), "delivered": suite.free_port(), "decide": suite.free_port()}
    helpers = [helper("--serve-http", str(http_port)),
               helper("--serve-grpc", str(grpc_ports["publish"]), "message.publish"),
               helper("--serve-grpc", str(grpc_ports["delivered"]), "message.delivered"),
               helper("--serve-grpc", str(grpc_ports["decide"]), "message.publish", lowest=False)]
    time.sleep(1)
    wait_serving(list(grpc_ports.values()))
    chosen = {name: case for name, case in cases(http_port, grpc_ports).items()
              if args.only in name or name.endswith(", none")}
    results: dict[str, list[dict]] = {}
    started = time.monotonic()
    try:
        for round_number in range(args.rounds):
            for name, (kind, settings) in chosen.items():
                if name.endswith(DECISION_CASE) and (round_number or args.rate):
                    continue        # known to be one round trip per message: one round tells it
                if kind == "fan_in":
                    result = fan_in(settings, args.duration, args.rate)
                else:
                    result = conn_rate(settings)
                results.setdefault(name, []).append(result)
    finally:
        for process in helpers:
            process.terminate()
    print(table(results, args.rate))
    print(f"\n{args.rounds} interleaved rounds, {args.duration:g} s each, in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
