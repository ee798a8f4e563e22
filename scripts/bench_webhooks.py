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
  without a hook runs the same two rounds). Under the table: the worker's CPU per
  CONNECT and how often the endpoint was asked in the measured rounds (0: every
  CONNECT was answered from the cache).

    python scripts/bench_webhooks.py                 # about 3.5 minutes on a quiet machine
    python scripts/bench_webhooks.py --rate 20000    # broker CPU per message at a fixed rate
    python scripts/bench_webhooks.py --endpoint-priority nice   # the local servers at nice 19

The endpoint and the ExHook servers stand for servers on other machines: they run at
SCHED_IDLE (`--endpoint-priority idle`, the default), on CPU the broker and its clients
leave, as the notification sender does; at nice 19 they still take CPU from them.

A broker with hooks is measured once its notification sender process is up
(`senders_ready`): while it starts, the worker sends the notifications itself.

Prints a markdown table: per scenario the median over the rounds and its ratio
to the same measure without a hook. As fast as the broker goes, the measure is
msg/s (conn/s); with `--rate` every publisher set offers that many msg/s and
the measure is the worker's CPU µs per message received (steady on a busy
machine). Beside it, per message received: the CPU of the notification sender and of
the endpoint (or ExHook server) the hook calls, the share of the messages whose
notification the endpoint received (it counts them) and the share the broker dropped
(it sends what it can and counts the rest).
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


class Received:
    """The number of requests a helper received, in a file the bench reads (a shared mapping:
    counting costs the helper next to nothing)."""

    def __init__(self, path: str) -> None:
        import mmap
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), 8)
        self.count = 0

    def add(self) -> None:
        self.count += 1
        self._map[:8] = self.count.to_bytes(8, "little")


def received_count(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[:8], "little")


def serve_http(port: int, counter: str) -> None:
    from aiohttp import web
    received = Received(counter)

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        received.add()
        name = request.headers.get("vernemq-hook", "")
        if name.startswith("auth_on_"):
            return web.json_response({"result": "ok"}, headers={"Cache-Control": "max-age=300"})
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    web.run_app(app, host=suite.HOST, port=port, print=None, access_log=None)


def serve_grpc(port: int, hook: str, counter: str, delay_ms: float = 0.0) -> None:
    import grpc
    from actormq.exhook import exhook_pb2 as pb
    from actormq.exhook import exhook_pb2_grpc as pb_grpc
    received = Received(counter)

    class Provider(pb_grpc.HookProviderServicer):
        async def OnProviderLoaded(self, request, context):
            return pb.LoadedResponse(hooks=[pb.HookSpec(name=hook)])

        async def OnProviderUnloaded(self, request, context):
            return pb.EmptySuccess()

        async def OnMessageDelivered(self, request, context):
            received.add()
            return pb.EmptySuccess()

        async def OnMessagePublish(self, request, context):
            received.add()
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


class Helper:
    """An endpoint or ExHook server process on a free port, and the count of what it received.

    It stands for a server on another machine, which costs the broker's machine no CPU; on a
    small machine it would otherwise take the broker's CPU. So it runs below the broker
    (never real-time, when the bench runs under `chrt`), at `priority`: ``idle`` (the
    default) at Linux's SCHED_IDLE policy, like the notification sender: a CPU nothing
    else wants; ``nice`` at nice 19, which still takes a CPU for its time slice when it
    runs (the bench's figures before `--endpoint-priority`); ``same``, at the bench's own
    priority, for a server every message waits for."""

    def __init__(self, workdir: Path, serve: str, *args: str, priority: str = "idle") -> None:
        self.port = suite.free_port()
        self.counter = workdir / f"received-{self.port}"
        self.counter.write_bytes(bytes(8))
        command = [sys.executable, __file__, serve, str(self.port), *args[:1], str(self.counter), *args[1:]]
        if priority == "same":
            self.process = subprocess.Popen(command, cwd=suite.REPO_ROOT, env=suite._env())
        else:
            self.process = subprocess.Popen(["nice", "-n", "19", *command], cwd=suite.REPO_ROOT,
                                            env=suite._env(), preexec_fn=LOWER[priority])

    def received(self) -> int:
        return received_count(self.counter)

    def cpu(self) -> float:
        """CPU seconds so far of the helper (under `nice`, the Python process it runs)."""
        try:
            root = psutil.Process(self.process.pid)
            return sum(sum(process.cpu_times()[:2]) for process in [root, *root.children(recursive=True)])
        except psutil.Error:
            return 0.0


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


def _idle() -> None:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


LOWER = {"idle": _idle, "nice": _not_real_time}
ENDPOINT_PRIORITIES = ("idle", "nice")


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


def fan_in(settings: dict[str, str], duration: float, rate: float | None, endpoint: Helper | None) -> dict:
    """One fan-in run; with `endpoint` (the helper the hook calls) what it received and its CPU
    from the first message until the broker stopped (it drains its sender for up to 1 s)."""
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
            delivered, endpoint_cpu = (endpoint.received(), endpoint.cpu()) if endpoint else (0, 0.0)
            pace = ("-r", rate) if rate else ()
            suite.Run(["pub", *target, "-c", 4, "-t", "fanin/%i", "-q", 0, "-s", 64, "--window", 100,
                       "-d", duration, *pace]).result(duration + 60)
            received = sub.result(90)
            own_after, senders_after = cpu_split(running)
        finally:
            running.stop()
        if endpoint:
            delivered, endpoint_cpu = endpoint.received() - delivered, endpoint.cpu() - endpoint_cpu
        count = max(1, received["received"])
        result = {"rate": received["rate"], "cpu_us": (own_after - own) / count * 1e6}
        if endpoint:
            result |= {"sender_us": (senders_after - senders) / count * 1e6, "endpoint_us": endpoint_cpu / count * 1e6,
                       "dropped": dropped_notifications(workdir) / count, "delivered": delivered / count}
        return result


def dropped_notifications(workdir: Path) -> int:
    """The notifications the broker logged as dropped (it does at stop)."""
    log = workdir / "broker.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return sum(int(count) for count in re.findall(r"(\d+) notifications dropped", text))


def conn_rate(settings: dict[str, str], endpoint: Helper | None) -> dict:
    """A first round of the same clients (it fills the auth cache), then the measured one:
    with a webhook and without one alike. With `endpoint`, the requests it got during the
    measured round (0 when every CONNECT was answered from the cache)."""
    with tempfile.TemporaryDirectory() as tmp:
        running = broker(Path(tmp), settings)
        try:
            target = ("-p", running.port, "--prefix", "conn-")     # the same client ids each round
            suite.connections(target, Path(tmp), running)
            own, _ = cpu_split(running)
            asked = endpoint.received() if endpoint else 0
            result = suite.connections(target, Path(tmp), running)
            own_after, _ = cpu_split(running)
            measured = {"rate": result["conn_rate"], "cpu_us": (own_after - own) / suite.CONNECTIONS * 1e6}
            if endpoint:
                measured["asked"] = endpoint.received() - asked
            return measured
        finally:
            running.stop()


DECISION_CASE = "as decision (EMQX)"


def cases(helpers: dict[str, Helper]) -> dict[str, tuple]:
    """Per scenario: its kind, the broker's settings and the helper its hook calls."""
    url = f"http://{suite.HOST}:{helpers['http'].port}/hook"

    def exhook(name: str, **extra: str) -> tuple[dict[str, str], Helper]:
        settings = {f"exhook.server.{name}.url": f"http://{suite.HOST}:{helpers[name].port}"}
        return settings | {f"exhook.server.{name}.{key}": value for key, value in extra.items()}, helpers[name]

    return {
        "QoS 0 fan-in, none": ("fan_in", {}, None),
        "QoS 0 fan-in, on_publish webhook": ("fan_in", {"webhooks.p.hook": "on_publish",
                                                        "webhooks.p.endpoint": url}, helpers["http"]),
        "QoS 0 fan-in, ExHook message.publish as notification": (
            "fan_in", *exhook("publish", message_publish="notify")),
        "QoS 0 fan-in, ExHook message.delivered": ("fan_in", *exhook("delivered")),
        "QoS 0 fan-in, ExHook message.publish as decision (EMQX)": ("fan_in", *exhook("decide")),
        "CONNECT rate, none": ("conn", {}, None),
        "CONNECT rate, auth_on_register webhook, cached": ("conn", {"webhooks.a.hook": "auth_on_register",
                                                                    "webhooks.a.endpoint": url}, helpers["http"]),
    }


def table(results: dict[str, list[dict]], rate: float | None) -> str:
    measure = "worker CPU µs/msg" if rate else "msg/s (conn/s)"
    key = "cpu_us" if rate else "rate"
    lines = [f"| scenario | {measure}, median | ratio to none | rounds | sender CPU µs/msg "
             "| endpoint CPU µs/msg | notifications delivered | dropped |",
             "|---|---|---|---|---|---|---|---|"]
    baselines = {"QoS": results.get("QoS 0 fan-in, none"), "CONNECT": results.get("CONNECT rate, none")}
    for name, rounds in results.items():
        value = statistics.median(r[key] for r in rounds)
        base = baselines[name.split()[0]]
        base_value = statistics.median(r[key] for r in base) if base else None
        ratio = (value / base_value if not rate else base_value / value) if base_value else float("nan")
        notified = [_median(rounds, what) for what in ("sender_us", "endpoint_us", "delivered", "dropped")]
        lines.append(f"| {name} | {value:,.1f} | {ratio:.2f}× | {', '.join(f'{r[key]:,.1f}' for r in rounds)} | "
                     + " | ".join(_cell(figure, form) for figure, form in zip(notified, (",.1f", ",.1f", ".1%", ".1%")))
                     + " |")
    return "\n".join(lines + _connect_notes(results, rate))


def _connect_notes(results: dict[str, list[dict]], rate: float | None) -> list[str]:
    """Under the table: the CONNECT rows' worker CPU per CONNECT (the table shows conn/s unless
    `--rate`) and the endpoint's requests in the measured rounds (0: the cache answered all)."""
    notes = []
    for name, rounds in results.items():
        if not name.startswith("CONNECT"):
            continue
        cpu = [r["cpu_us"] for r in rounds]
        asked = [r["asked"] for r in rounds if "asked" in r]
        note = "" if rate else (f"worker CPU {statistics.median(cpu):,.0f} µs per CONNECT "
                                f"(rounds {', '.join(f'{figure:,.0f}' for figure in cpu)})")
        if asked:
            note += f"{', ' if note else ''}endpoint asked {sum(asked)} times in the measured rounds"
        if note:
            notes.append(f"\n{name}: {note}")
    return notes


def _median(rounds: list[dict], what: str) -> float | None:
    figures = [r[what] for r in rounds if r.get(what) is not None]
    return statistics.median(figures) if figures else None


def _cell(figure: float | None, form: str) -> str:
    return "" if figure is None else format(figure, form)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rate", type=float, default=None,
                        help="offer this many msg/s (all publishers) and compare CPU per message")
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains one of "
                        "these (comma-separated)")
    parser.add_argument("--endpoint-priority", choices=ENDPOINT_PRIORITIES, default="idle",
                        help="the local endpoint and ExHook servers at SCHED_IDLE (as if remote) or at nice 19")
    parser.add_argument("--serve-http", nargs=2, metavar="PORT COUNTER")
    parser.add_argument("--serve-grpc", nargs="+", metavar="PORT HOOK COUNTER [DELAY_MS]")
    args = parser.parse_args()
    if args.serve_http:
        return serve_http(int(args.serve_http[0]), args.serve_http[1])
    if args.serve_grpc:
        port, hook, counter, *delay = args.serve_grpc
        return serve_grpc(int(port), hook, counter, *map(float, delay))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))     # stopped (timeout): stop the helpers too
    counters = tempfile.TemporaryDirectory()
    workdir = Path(counters.name)
    priority = args.endpoint_priority
    helpers = {"http": Helper(workdir, "--serve-http", priority=priority),
               "publish": Helper(workdir, "--serve-grpc", "message.publish", priority=priority),
               "delivered": Helper(workdir, "--serve-grpc", "message.delivered", priority=priority),
               "decide": Helper(workdir, "--serve-grpc", "message.publish", priority="same")}
    time.sleep(1)
    wait_serving([helpers[name].port for name in ("publish", "delivered", "decide")])
    wanted = [part.strip() for part in args.only.split(",")]
    picked = {name: case for name, case in cases(helpers).items() if any(part in name for part in wanted)}
    kinds = {kind for kind, _, _ in picked.values()}
    chosen = {name: case for name, case in cases(helpers).items()
              if name in picked or (name.endswith(", none") and case[0] in kinds)}
    results: dict[str, list[dict]] = {}
    started = time.monotonic()
    try:
        for round_number in range(args.rounds):
            for name, (kind, settings, endpoint) in chosen.items():
                if name.endswith(DECISION_CASE) and (round_number or args.rate):
                    continue        # known to be one round trip per message: one round tells it
                if kind == "fan_in":
                    result = fan_in(settings, args.duration, args.rate, endpoint)
                else:
                    result = conn_rate(settings, endpoint)
                results.setdefault(name, []).append(result)
    finally:
        for running in helpers.values():
            running.process.terminate()
        for running in helpers.values():
            running.process.wait(10)
        counters.cleanup()
    print(table(results, args.rate))
    print(f"\n{args.rounds} interleaved rounds, {args.duration:g} s each, in {time.monotonic() - started:.0f} s; "
          f"endpoint and ExHook servers at {'SCHED_IDLE' if priority == 'idle' else 'nice 19'}")


if __name__ == "__main__":
    main()
