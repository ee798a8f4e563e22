#!/usr/bin/env python3
"""What a webhook or an ExHook costs the broker: strictly paired rounds against a broker without one.

Scenarios (`-w 1`; each one a pair of brokers, one without a hook ("none") and one with it):

- QoS 0 fan-in (4 publishers -> 1 subscriber, 64 B, as fast as the broker takes it) with an
  `on_publish` webhook (a local endpoint in its own process: an HTTP/1.1 keep-alive server
  answering as VerneMQ documents, `serve_http`), with an ExHook server (its own process)
  that loads no hook at all (what gRPC in the worker costs by itself: its library, its
  threads, an idle channel), one that loads `message.publish` sent as a
  notification (`exhook.server.<name>.message_publish = notify`), one that loads
  `message.delivered` (always a notification), and one that loads `message.publish` as EMQX
  does (a decision each message waits for: one pair only, and not with `--rate`);
- CONNECT rate (`--connections`, 2,000 by default, 50 at a time, each closed as soon as all
  are connected, the same client ids every round) with an
  `auth_on_register` webhook answering `Cache-Control: max-age=300` (the warm-up round
  fills the cache: the measured rounds are answered from it; the table says how often the
  endpoint was asked in them, 0 when never);
- and first, per kind, the A/A case: a broker without a hook against another one without a
  hook, measured the same way. Its spread is how far apart two identical brokers come out
  on this machine in this run: a ratio inside it is no evidence of a cost.

    python scripts/bench_webhooks.py                          # about 10 minutes on a quiet machine
    python scripts/bench_webhooks.py --only on_publish        # one scenario and its A/A case, ~3 minutes
    python scripts/bench_webhooks.py --rate 20000             # CPU per message at a fixed offered rate

How it measures, and why (the rounds of one scenario used to range up to 1.6x on a
2-core machine, and a no-op plugin came out anywhere from 0.62x to 1.45x):

- Both brokers of a pair are started once per half (below) and stay up: no round pays for a
  broker start, and a hook's notification sender is measured once it is up (`senders_ready`).
- The pairs are run in two halves, each on a new pair of brokers: in the first half the broker
  without the hook is started first, in the second the one with it. Which of two identical
  brokers started first came out faster in some runs (the A/A case at 0.91x in one quiet run);
  alternating the order keeps that from counting for or against the hook.
- Warm-up: one unmeasured round on each broker (`--warmup` s) before the measured ones.
- Then `--pairs` pairs of short rounds (`--duration` s) in the order none, hook, hook, none,
  none, hook ... (ABBA): each ratio is taken between the two adjacent rounds of one pair, so
  a drift of the machine's speed (other load, the host's CPU frequency, steal time on a VM)
  touches both sides of a pair alike and alternates between them. The result is the median
  of the pair ratios; the spread column gives the lowest and highest pair ratio.
- A round of the hook side lasts until its notifications are sent: after the publishers stop,
  the bench waits until the endpoint's count of requests stands still (the sender holds up
  to `webhooks.queue_size` notifications). Without that the sender's backlog would run during
  the next round of the broker without a hook and slow it down, hiding the hook's cost. The
  hook broker runs with a queue of `--queue-size` (1,000; the default of 10,000 is several
  seconds of the sender's work on two cores): the backlog then is a small part of a round's
  work, as it is of a long run's, and a round ends soon after its publishers.
- Throughput is what the subscriber received per second; the broker's CPU per message is
  the CPU of all of the broker's processes, its notification sender included (it is part of
  the broker), over the round until it settled, per message received. The pair ratios of CPU per
  message (none / hook), of the broker and of its worker alone, are given beside the
  throughput ratio; load on the machine moves them too: compare each with the A/A case's.
- `--sender stopped` suspends the hook broker's notification sender once it is up: its worker
  then drops every event once the credit is spent, and the ratio is what the hook costs
  without any of the sender's CPU (to tell whether an idle-priority sender takes CPU from
  the worker).
- The endpoint and the ExHook servers stand for servers on other machines, which cost the
  broker's machine no CPU: they run at Linux's SCHED_IDLE (`--endpoint-priority idle`,
  the default), on CPU the broker and its clients leave, never real-time (under `chrt` the
  bench lowers them). Their CPU is reported, not counted. The server of the decision case,
  which every message waits for, runs at the bench's own priority.
- Notifications are asynchronous: what the endpoint received (per message received, median
  of the rounds) and what the broker dropped (logged at stop, per message published to the
  hook's broker in all its rounds, warm-up included); the two add up to about 100 %.
- Under the table: the machine's load average and the share of CPU time the hypervisor
  took (steal) while the bench ran; figures of a loaded machine are not proof either way.

For short runs on a busy machine, `chrt -f 20 python scripts/bench_webhooks.py --only ...`
keeps other load from drowning the figures (keep such a run under 2 minutes).
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


ANSWERS = {     # as VerneMQ documents them: auth_on_* allowed (cacheable), notifications acknowledged
    True: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: max-age=300\r\n"
          b"Content-Length: 16\r\n\r\n{\"result\": \"ok\"}",
    False: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
}


def serve_http(port: int, counter: str) -> None:
    """The webhook endpoint: an HTTP/1.1 keep-alive server on an asyncio protocol (uvloop where
    installed), each request read by httptools' parser (llhttp) and answered with bytes made
    once (`ANSWERS`: 200 and JSON, `{"result": "ok"}` with `Cache-Control: max-age=300` to
    `auth_on_*`, `{}` to the notifications). About a third of the CPU per request of the
    aiohttp `web` endpoint it replaced, for the same answers (measured with
    bench_notification_sender.py); a request with `Connection: close` (or HTTP/1.0) is
    answered and its connection closed."""
    import httptools
    from actormq.eventloop import new_event_loop
    received = Received(counter)

    class Hook(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpRequestParser(self)
            self.auth = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                self.transport.close()

        def on_header(self, name: bytes, value: bytes) -> None:
            if name.lower() == b"vernemq-hook":
                self.auth = value.startswith(b"auth_on_")

        def on_message_complete(self) -> None:
            received.add()
            self.transport.write(ANSWERS[self.auth])
            self.auth = False
            if not self.parser.should_keep_alive():
                self.transport.close()

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Hook, suite.HOST, port)
        await server.serve_forever()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve())


def serve_grpc(port: int, hook: str, counter: str, delay_ms: float = 0.0) -> None:
    """An ExHook server that loads `hook` ("none": no hook) and counts the calls of it.

    grpcio's threaded server with generic handlers that answer bytes made once: a
    notification costs it ~420 µs of CPU where a `grpc.aio` servicer took ~575 (measured,
    one client, 8 calls in flight), where the aiohttp endpoint took 340-380 (`serve_http`
    since: ~45). On the broker's machine that CPU is taken from the broker, which a remote
    server would not do."""
    from concurrent import futures

    import grpc
    from actormq.exhook import exhook_pb2 as pb
    received = Received(counter)
    loaded = pb.LoadedResponse(hooks=[pb.HookSpec(name=hook)] if hook != "none" else []).SerializeToString()
    empty = pb.EmptySuccess().SerializeToString()
    ignore = pb.ValuedResponse(type=pb.ValuedResponse.IGNORE).SerializeToString()

    def answer(response: bytes, counted: bool = False, delay_s: float = 0.0):
        def handle(_request: bytes, _context) -> bytes:
            if counted:
                received.add()
            if delay_s:
                time.sleep(delay_s)
            return response
        return grpc.unary_unary_rpc_method_handler(handle)

    handler = grpc.method_handlers_generic_handler("emqx.exhook.v1.HookProvider", {
        "OnProviderLoaded": answer(loaded), "OnProviderUnloaded": answer(empty),
        "OnMessageDelivered": answer(empty, True),
        "OnMessagePublish": answer(ignore, True, delay_ms / 1000)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=[handler])
    server.add_insecure_port(f"{suite.HOST}:{port}")
    server.start()
    server.wait_for_termination()


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


def usage(running: suite.Broker) -> tuple[float, float, int, int]:
    """So far: CPU seconds of the broker's own processes and of its notification senders, the
    times the broker's processes were preempted (involuntary context switches of their main
    threads) and the times the senders woke up (their voluntary ones)."""
    own = senders = 0.0
    preempted = wakeups = 0
    for process in running.processes():
        try:
            seconds = sum(process.cpu_times()[:2])
            switches = process.num_ctx_switches()
            if SENDER_MODULE in " ".join(process.cmdline()):
                senders += seconds
                wakeups += switches.voluntary
            else:
                own += seconds
                preempted += switches.involuntary
        except psutil.Error:
            continue
    return own, senders, preempted, wakeups


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


def settled(endpoint: Helper | None, quiet_s: float = 0.3, timeout_s: float = 15.0) -> None:
    """Until the endpoint has received nothing for `quiet_s`: the sender's backlog is sent."""
    if endpoint is None:
        return
    deadline = time.monotonic() + timeout_s
    count = endpoint.received()
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = endpoint.received()
        if now == count:
            return
        count = now


class Side:
    """One broker of a pair, started once and measured round after round."""

    def __init__(self, workdir: Path, settings: dict[str, str], endpoint: Helper | None,
                 sender_stopped: bool = False) -> None:
        self.workdir, self.endpoint = workdir, endpoint
        self.running = broker(workdir, settings)
        self.stopped: list[psutil.Process] = []
        if settings:
            senders_ready(self.running)
        if sender_stopped:      # what the hook costs the worker alone: it drops all once the credit is spent
            self.stopped = [process for process in self.running.processes()
                            if SENDER_MODULE in " ".join(process.cmdline())]
            for process in self.stopped:
                process.suspend()
        self.published = 0          # messages published to it, warm-up included

    def fan_in(self, duration: float, rate: float | None) -> dict:
        """One round: a subscriber, the publishers for `duration` s, then until the endpoint settled."""
        target = ("-p", self.running.port)
        sub = suite.start_subscriber(self.workdir, *target, "-t", "fanin/#", "-q", 0,
                                     "-d", duration + suite.DRAIN_GRACE, "--idle", 0.5)
        before = self._snapshot()
        pace = ("-r", rate) if rate else ()
        published = suite.Run(["pub", *target, "-c", 4, "-t", "fanin/%i", "-q", 0, "-s", 64, "--window", 100,
                               "-d", duration, *pace]).result(duration + 60)
        received = sub.result(90)
        settled(self.endpoint)
        count = max(1, received["received"])
        self.published += published["sent"]
        return {"rate": received["rate"], **self._per(before, count)}

    def connect(self, count: int) -> dict:
        """One round of `count` CONNECTs of the same client ids (the auth cache answers), 50 at
        a time, then their DISCONNECTs; CPU per CONNECT of the whole round."""
        before = self._snapshot()
        result = suite.Run(["conn", "-p", self.running.port, "--prefix", "conn-", "-c", count,
                            "--concurrency", 50]).result(120)
        if result["connected"] != count:
            raise suite.SuiteError(f"{result['connected']:,} of {count:,} clients connected")
        settled(self.endpoint)
        return {"rate": result["rate"], **self._per(before, count)}

    def _snapshot(self) -> tuple:
        endpoint = self.endpoint
        return (*usage(self.running), endpoint.received() if endpoint else 0, endpoint.cpu() if endpoint else 0.0,
                time.monotonic())

    def _per(self, before: tuple, count: int) -> dict:
        """CPU µs per message (broker with its sender; the sender; the endpoint), requests, and
        the broker's preemptions per 1,000 messages and its sender's wake-ups per second."""
        own, senders, preempted, wakeups, asked, endpoint_cpu, seconds = (
            after - first for after, first in zip(self._snapshot(), before))
        return {"cpu_us": (own + senders) / count * 1e6, "worker_us": own / count * 1e6,
                "sender_us": senders / count * 1e6, "endpoint_us": endpoint_cpu / count * 1e6,
                "asked": asked, "delivered": asked / count, "preempted": preempted / count * 1000,
                "wakeups": wakeups / seconds}

    def stop(self) -> int:
        """Stop the broker; the notifications it dropped in its life (it logs them at stop)."""
        for process in self.stopped:
            process.resume()
        self.running.stop()
        log = self.workdir / "broker.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return sum(int(count) for count in re.findall(r"(\d+) notifications dropped", text))


def paired(kind: str, settings: dict[str, str], endpoint: Helper | None, pairs: int, args) -> dict:
    """`pairs` ABBA pairs (each pair's ratios, hook to none) in two halves, each on a new pair of
    brokers started in the other order: none first, then hook first."""
    rounds: list[tuple[dict, dict]] = []
    dropped = published = 0
    for hook_first in (False, True):
        half = pairs // 2 if not hook_first else pairs - pairs // 2
        if half:
            more, lost, sent = _brokers_paired(kind, settings, endpoint, half, hook_first, args)
            rounds += more
            dropped, published = dropped + lost, published + sent
    return {"rounds": rounds, "dropped": dropped / max(1, published) if settings and kind == "fan_in" else None}


def _brokers_paired(kind: str, settings: dict[str, str], endpoint: Helper | None, pairs: int, hook_first: bool,
                    args) -> tuple[list[tuple[dict, dict]], int, int]:
    """Start both brokers (in the order given: which one starts first must not decide the
    ratio), warm each up, then `pairs` ABBA pairs; the rounds, the hook broker's drops and
    what was published to it."""
    with tempfile.TemporaryDirectory() as none_dir, tempfile.TemporaryDirectory() as hook_dir:
        queue = {"webhooks.queue_size": str(args.queue_size), "exhook.queue_size": str(args.queue_size)}
        started: dict[str, Side] = {}
        try:
            for name in (("hook", "none") if hook_first else ("none", "hook")):
                started[name] = (Side(Path(none_dir), {}, None) if name == "none" else
                                 Side(Path(hook_dir), settings and settings | queue, endpoint,
                                      args.sender == "stopped"))
            none, hook = started["none"], started["hook"]
            measure = ((lambda side, seconds: side.fan_in(seconds, args.rate)) if kind == "fan_in"
                       else (lambda side, seconds: side.connect(args.connections)))
            for side in (none, hook):
                measure(side, args.warmup)
            rounds = []
            for number in range(pairs):
                order = (none, hook) if number % 2 == 0 else (hook, none)
                measured = {id(side): measure(side, args.duration) for side in order}
                rounds.append((measured[id(none)], measured[id(hook)]))
        finally:
            if "none" in started:
                started["none"].stop()
            dropped = started["hook"].stop() if "hook" in started else 0
    return rounds, dropped, started["hook"].published


DECISION_CASE = "as decision (EMQX)"


def cases(helpers: dict[str, Helper]) -> dict[str, tuple]:
    """Per scenario: its kind, the hook broker's settings and the helper its hook calls."""
    url = f"http://{suite.HOST}:{helpers['http'].port}/hook"

    def exhook(name: str, **extra: str) -> tuple[dict[str, str], Helper]:
        settings = {f"exhook.server.{name}.url": f"http://{suite.HOST}:{helpers[name].port}"}
        return settings | {f"exhook.server.{name}.{key}": value for key, value in extra.items()}, helpers[name]

    return {
        "QoS 0 fan-in, A/A (none against none)": ("fan_in", {}, None),
        "QoS 0 fan-in, on_publish webhook": ("fan_in", {"webhooks.p.hook": "on_publish",
                                                        "webhooks.p.endpoint": url}, helpers["http"]),
        "QoS 0 fan-in, ExHook server loading no hook": ("fan_in", *exhook("nohooks")),
        "QoS 0 fan-in, ExHook message.publish as notification": (
            "fan_in", *exhook("publish", message_publish="notify")),
        "QoS 0 fan-in, ExHook message.delivered": ("fan_in", *exhook("delivered")),
        "QoS 0 fan-in, ExHook message.publish as decision (EMQX)": ("fan_in", *exhook("decide")),
        "CONNECT rate, A/A (none against none)": ("conn", {}, None),
        "CONNECT rate, auth_on_register webhook, cached": ("conn", {"webhooks.a.hook": "auth_on_register",
                                                                    "webhooks.a.endpoint": url}, helpers["http"]),
    }


def table(results: dict[str, dict], rate: float | None) -> str:
    """Per scenario: the median pair ratio and the spread of the pair ratios, of throughput
    (as fast as it goes) or of CPU per message (`--rate`), the median pair ratios of CPU per
    message (the broker with its sender; its worker alone), and the figures behind them."""
    key = "cpu_us" if rate else "rate"
    lines = [f"| scenario | ratio to none ({'CPU/msg' if rate else 'msg/s'}), median of pairs | pair ratios, "
             "lowest–highest | CPU/msg ratio, broker | CPU/msg ratio, worker alone | msg/s (conn/s) none / hook "
             "| broker CPU µs/msg none / hook | of which sender | endpoint CPU µs/msg | delivered | dropped |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for name, result in results.items():
        pairs = result["rounds"]
        ratios = [_ratio(none, hook, key) for none, hook in pairs]
        none_side = [none for none, _ in pairs]
        hook_side = [hook for _, hook in pairs]
        notifies = "A/A" not in name and name.startswith("QoS")
        cells = [f"{statistics.median(ratios):.2f}×", f"{min(ratios):.2f}–{max(ratios):.2f}",
                 f"{statistics.median(_ratio(none, hook, 'cpu_us') for none, hook in pairs):.2f}×",
                 f"{statistics.median(_ratio(none, hook, 'worker_us') for none, hook in pairs):.2f}×",
                 f"{_median(none_side, 'rate'):,.0f} / {_median(hook_side, 'rate'):,.0f}",
                 f"{_median(none_side, 'cpu_us'):,.1f} / {_median(hook_side, 'cpu_us'):,.1f}",
                 f"{_median(hook_side, 'sender_us'):,.1f}" if notifies else "",
                 f"{_median(hook_side, 'endpoint_us'):,.1f}" if notifies else "",
                 f"{_median(hook_side, 'delivered'):.1%}" if notifies else "",
                 f"{result['dropped']:.1%}" if notifies and result["dropped"] is not None else ""]
        lines.append(f"| {name} | {' | '.join(cells)} |")
        notes.append(f"{name}: the broker preempted {_median(none_side, 'preempted'):.1f} / "
                     f"{_median(hook_side, 'preempted'):.1f} times per 1,000 messages or CONNECTs (none / hook)"
                     + (f", its sender woke up {_median(hook_side, 'wakeups'):,.0f} times a second" if notifies
                        else ""))
        if name.startswith("CONNECT") and "A/A" not in name:
            lines.append(f"\n{name}: endpoint asked {sum(hook['asked'] for hook in hook_side)} times "
                         "in the measured rounds\n")
    return "\n".join(lines + ["", *notes])


def _ratio(none: dict, hook: dict, key: str) -> float:
    """Hook relative to none: above 1 is faster (throughput up, or CPU per message down)."""
    return hook[key] / none[key] if key == "rate" else none[key] / hook[key]


def _median(rounds: list[dict], what: str) -> float:
    return statistics.median(r[what] for r in rounds)


def cpu_times() -> list[int]:
    """The machine's CPU time so far (/proc/stat: user nice system idle iowait irq softirq steal)."""
    with open("/proc/stat") as stat:
        return [int(field) for field in stat.readline().split()[1:9]]


def machine_note(before: list[int], load_before: float) -> str:
    spent = [after - first for after, first in zip(cpu_times(), before)]
    steal = spent[7] / max(1, sum(spent))
    return (f"load average (1 min) {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
            f"steal {steal:.1%} of the CPU time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="measured pairs of rounds per scenario")
    parser.add_argument("--duration", type=float, default=2.0, help="s of publishing per round")
    parser.add_argument("--warmup", type=float, default=3.0, help="s of the unmeasured first round")
    parser.add_argument("--connections", type=int, default=suite.CONNECTIONS,
                        help="CONNECTs per round of the CONNECT scenarios (more: longer rounds, a steadier rate)")
    parser.add_argument("--rate", type=float, default=None,
                        help="offer this many msg/s (all publishers) and compare CPU per message")
    parser.add_argument("--only", default="", help="run only the scenarios whose name matches this regular "
                        "expression (e.g. 'on_publish|message.publish'), and the A/A case of their kind")
    parser.add_argument("--endpoint-priority", choices=ENDPOINT_PRIORITIES, default="idle",
                        help="the local endpoint and ExHook servers at SCHED_IDLE (as if remote) or at nice 19")
    parser.add_argument("--queue-size", type=int, default=1000,
                        help="webhooks.queue_size and exhook.queue_size of the hook broker: the notifications its "
                        "sender may hold, which it sends after the round")
    parser.add_argument("--sender", choices=("running", "stopped"), default="running",
                        help="stopped: the hook broker's notification sender is suspended once up (its worker "
                        "drops every notification once the credit is spent): the hook's cost without the sender")
    parser.add_argument("--serve-http", nargs=2, metavar="PORT COUNTER")
    parser.add_argument("--serve-grpc", nargs="+", metavar="PORT HOOK COUNTER [DELAY_MS]",
                        help="(the bench's own helper) an ExHook server loading HOOK, or no hook for 'none'")
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
               "nohooks": Helper(workdir, "--serve-grpc", "none", priority=priority),
               "decide": Helper(workdir, "--serve-grpc", "message.publish", priority="same")}
    time.sleep(1)
    wait_serving([helpers[name].port for name in ("publish", "delivered", "decide", "nohooks")])
    picked = {name: case for name, case in cases(helpers).items() if re.search(args.only, name)}
    kinds = {kind for kind, _, _ in picked.values()}
    chosen = {name: case for name, case in cases(helpers).items()
              if name in picked or ("A/A" in name and case[0] in kinds)}
    if args.rate:
        chosen = {name: case for name, case in chosen.items() if not name.endswith(DECISION_CASE)}
    results: dict[str, dict] = {}
    started, machine, load = time.monotonic(), cpu_times(), os.getloadavg()[0]
    try:
        for name, (kind, settings, endpoint) in chosen.items():
            pairs = 1 if name.endswith(DECISION_CASE) else args.pairs   # one round trip per message
            results[name] = paired(kind, settings, endpoint, pairs, args)
            print(table({name: results[name]}, args.rate).splitlines()[2], file=sys.stderr, flush=True)
    finally:
        for running in helpers.values():
            running.process.terminate()
        for running in helpers.values():
            running.process.wait(10)
        counters.cleanup()
    print(table(results, args.rate))
    print(f"\n{args.pairs} pairs of {args.duration:g} s rounds per scenario after a {args.warmup:g} s warm-up, "
          f"in {time.monotonic() - started:.0f} s; endpoint and ExHook servers at "
          f"{'SCHED_IDLE' if priority == 'idle' else 'nice 19'}; {machine_note(machine, load)}")


if __name__ == "__main__":
    main()
