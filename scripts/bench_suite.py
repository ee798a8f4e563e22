#!/usr/bin/env python3
"""Run the standard benchmark scenarios against several MQTT brokers and write
results.md, results.json (and chart.png when matplotlib is installed).

Every scenario starts a fresh broker on a free loopback port, drives it with
`actormq bench` (separate publisher and subscriber processes) and stops the
broker by its PID. A broker that fails to start or a scenario that fails or
times out gives an "error" cell; the suite goes on.

    python scripts/bench_suite.py --brokers actormq-w1,actormq-w2,mosquitto,amqtt \
        --duration 5 --out bench-results/

Brokers: actormq-wN (`python -m actormq run -w N`), mosquitto (/usr/sbin/mosquitto,
Debian package `mosquitto`), amqtt (PyPI `amqtt`, its `amqtt` script on PATH,
beside this Python, or given with --amqtt-bin). Brokers that are not installed
are reported as "not installed".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
MOSQUITTO = "/usr/sbin/mosquitto"
QUEUE_LIMIT = 100_000
DRAIN_GRACE = 25.0  # s a subscriber keeps receiving after the publishers stop
DRAIN_MESSAGES = 20_000
DRAIN_ROUNDS = 3
CONNECTIONS = 2_000
FIRST_BATCH_HOLD_S = 10   # `connections`: the first batch stays while a second one comes
OFFLINE_MESSAGES = 80_000  # all publishers together; below QUEUE_LIMIT, so nothing is dropped
OFFLINE_ROUNDS = 3

# Measured on the project's 2-core machine; shown beside the suite's own figures.
REFERENCE = {
    "mosquitto": {"qos0_fanin": 379_501, "qos1_fanin": 133_234, "fanout": 288_842,
                  "latency_p50": 29, "latency_p99": 75, "conn_rate": 36_220,
                  "kib_per_conn": 0.7, "drain_s": 0.038},
    "amqtt": {"qos0_fanin": 7_643, "qos1_fanin": 4_916, "fanout": 34_922,
              "latency_p50": 201, "latency_p99": 2_037, "conn_rate": 1_411,
              "kib_per_conn": 50.9, "drain_s": 0.862},
}


class SuiteError(Exception):
    """A broker or a scenario failed; the cell says 'error'."""


# -- brokers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Broker:
    """One broker process on a free loopback port, owned by the suite."""

    name: str
    port: int
    workdir: Path
    own_ports: int = 0      # workers that listen on a port of their own too
    proc: subprocess.Popen | None = None

    def start(self, command: list[str]) -> None:
        log = open(self.workdir / "broker.log", "wb")
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, env=_env(), start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SuiteError(f"{self.name} did not start: {self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def rss(self) -> int:
        return sum(_safe(lambda p=p: p.memory_info().rss) for p in self.processes())

    def pss(self) -> int:
        """Proportional set size: the pages the processes share counted once in all."""
        return sum(_safe(lambda p=p: p.memory_full_info().pss) for p in self.processes())

    def cpu(self) -> float:
        return sum(_safe(lambda p=p: sum(p.cpu_times()[:2])) for p in self.processes())

    def log_tail(self, limit: int | None = 400) -> str:
        with contextlib.suppress(OSError):
            text = (self.workdir / "broker.log").read_text(errors="replace")
            return (text[-limit:] if limit else text).strip()
        return ""


def _safe(read) -> float:
    try:
        return read()
    except psutil.Error:
        return 0


def port_open(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.2).close()
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class TlsListener:
    """The TLS port of a broker in a TLS scenario, and the files it serves."""

    port: int
    cafile: Path
    certfile: Path
    keyfile: Path


def make_certificates(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 (openssl), as (ca, cert, key)."""
    ca, ca_key = workdir / "ca.crt", workdir / "ca.key"
    cert, key, csr = workdir / "server.crt", workdir / "server.key", workdir / "server.csr"
    ext = workdir / "server.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    for step in (
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=bench CA"],
        ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", ext],
    ):
        subprocess.run(["openssl", *map(str, step)], check=True, capture_output=True, timeout=30)
    return ca, cert, key


def actormq_command(workers: int):
    def command(port: int, workdir: Path, settings: dict, tls: TlsListener | None = None) -> list[str]:
        extra = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
        cmd = [sys.executable, "-m", "actormq", "run", "-w", str(workers), "--host", HOST,
               "--port", str(port), "--data-dir", str(workdir / "data"),
               "--set", "sys_interval=0", "--set", "management.listener.http=0",
               "--set", f"queue.max_offline_messages={QUEUE_LIMIT}",
               "--set", f"queue.max_online_messages={QUEUE_LIMIT}", *extra]
        if tls is not None:
            cmd += ["--set", f"listener.ssl.bench={HOST}:{tls.port}",
                    "--set", f"listener.ssl.bench.certfile={tls.certfile}",
                    "--set", f"listener.ssl.bench.keyfile={tls.keyfile}"]
        return cmd
    return command


def mosquitto_command(port: int, workdir: Path, settings: dict,
                      tls: TlsListener | None = None) -> list[str]:
    conf = workdir / "mosquitto.conf"
    listeners = [f"listener {port} {HOST}"]
    if tls is not None:
        listeners += [f"listener {tls.port} {HOST}", f"certfile {tls.certfile}", f"keyfile {tls.keyfile}"]
    conf.write_text("\n".join([
        "per_listener_settings false", *listeners, "allow_anonymous true",
        f"max_queued_messages {QUEUE_LIMIT}", "persistence false", "log_dest none",
        f"user {pwd.getpwuid(os.getuid()).pw_name}",
        *(f"{key} {value}" for key, value in settings.items())]) + "\n")
    return [MOSQUITTO, "-c", str(conf)]


def amqtt_command(binary: str):
    # amqtt keeps no offline messages for anonymous sessions, so its clients
    # log in with a user name (any name passes with allow-anonymous false)
    def command(port: int, workdir: Path, settings: dict, tls: TlsListener | None = None) -> list[str]:
        if tls is not None:
            raise SuiteError("no TLS setup for amqtt in this suite")
        conf = workdir / "amqtt.yaml"
        conf.write_text("\n".join([
            "listeners:", "  default:", "    type: tcp", f"    bind: {HOST}:{port}",
            "plugins:", "  amqtt.plugins.authentication.AnonymousAuthPlugin:",
            "    allow_anonymous: false"]) + "\n")
        return [binary, "-c", str(conf)]
    return command


@dataclass(frozen=True)
class BrokerSpec:
    """How to start a broker, and what every `actormq bench` client adds for it.
    Only actormq takes a scenario's settings (SETTINGS); the others run just the
    scenarios that need none."""

    command: object
    client_args: tuple = ()
    takes_settings: bool = False
    workers: int = 1
    own_settings: dict = field(default_factory=dict)    # scenario -> its settings for this broker


def find_amqtt(given: str | None) -> str | None:
    for candidate in (given, shutil.which("amqtt"), str(Path(sys.executable).parent / "amqtt")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def broker_commands(names: list[str], amqtt_bin: str | None) -> dict:
    """name -> BrokerSpec, or a string saying why the broker cannot run."""
    commands: dict = {}
    for name in names:
        if match := re.fullmatch(r"actormq-w(\d+)", name):
            commands[name] = BrokerSpec(actormq_command(int(match.group(1))), takes_settings=True,
                                        workers=int(match.group(1)))
        elif name == "mosquitto":
            commands[name] = BrokerSpec(mosquitto_command, own_settings=MOSQUITTO_SETTINGS) \
                if os.path.exists(MOSQUITTO) else "not installed"
        elif name == "amqtt":
            binary = find_amqtt(amqtt_bin)
            commands[name] = BrokerSpec(amqtt_command(binary), ("-u", "bench")) if binary \
                else "not installed"
        else:
            raise SystemExit(f"unknown broker {name!r}")
    return commands


# -- running `actormq bench` -------------------------------------------------------------


def bench_command(*args, quiet: bool = True) -> list[str]:
    return [sys.executable, "-m", "actormq", "bench", *map(str, args), "--json",
            *(("--quiet",) if quiet else ())]


@dataclass
class Run:
    """A started `actormq bench` process whose JSON summary is read at the end
    (`quiet`: the command prints live progress unless told not to)."""

    args: list
    quiet: bool = True
    proc: subprocess.Popen = field(init=False)

    def __post_init__(self) -> None:
        self.proc = subprocess.Popen(bench_command(*self.args, quiet=self.quiet),
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=REPO_ROOT, env=_env())

    def result(self, timeout: float) -> dict:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise SuiteError(f"bench {self.args[0]} timed out") from None
        if self.proc.returncode != 0:
            raise SuiteError(f"bench {self.args[0]} failed: {err.decode()[-300:].strip()}")
        return json.loads(out)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}


def start_subscriber(workdir: Path, *args) -> Run:
    """Start `bench sub` and wait until it is subscribed."""
    ready = workdir / f"ready-{time.monotonic_ns()}"
    run = Run(["sub", *args, "--ready-file", ready])
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.exists():
        if run.proc.poll() is not None or time.monotonic() > deadline:
            run.result(timeout=1)
            raise SuiteError("subscriber never became ready")
        time.sleep(0.02)
    return run


def delivery_check(expected: int, sub: dict, must_be_exact: bool) -> str:
    """'ok', or what was lost / duplicated (for QoS 0 loss is reported, not a failure)."""
    lost = expected - (sub["received"] - sub["duplicates"])
    problems = [f"{what} {count:,}" for what, count in
                (("lost", lost), ("dup", sub["duplicates"])) if count]
    if not problems:
        return "ok"
    return ("FAIL " if must_be_exact else "") + ", ".join(problems)


# -- scenarios -------------------------------------------------------------------------


def fan_in(target: tuple, workdir: Path, duration: float, qos: int, rate: float = 0) -> dict:
    """4 publishers -> 1 subscriber, 64 B, as fast as the broker takes it (or at `rate`
    messages per second of the four together)."""
    sub = start_subscriber(workdir, *target, "-t", "fanin/#", "-q", qos,
                           "-d", duration + DRAIN_GRACE, "--idle", 2)
    pub = Run(["pub", *target, "-c", 4, "-t", "fanin/%i", "-q", qos, "-s", 64,
               "--window", 100, "-d", duration, *(("-r", rate) if rate else ())]).result(duration + 60)
    received = sub.result(90)
    return {"rate": received["rate"], "publish_rate": pub["rate"], "sent": pub["sent"],
            "received": received["received"],
            "latency_p50": received["latency_us"] and received["latency_us"]["p50"],
            "check": delivery_check(pub["sent"], received, qos > 0),
            "tool_cpu_per_million": _tool_cpu(pub, received)}


def fan_out(target: tuple, workdir: Path, duration: float, rate: float) -> dict:
    """1 publisher -> 100 subscribers of one topic, QoS 0, `rate` publishes per second."""
    sub = start_subscriber(workdir, *target, "-c", 100, "-t", "fanout/all",
                           "-d", duration + DRAIN_GRACE, "--idle", 2)
    pub = Run(["pub", *target, "-t", "fanout/all", "-r", rate,
               "-d", duration]).result(duration + 60)
    received = sub.result(90)
    return {"rate": received["rate"], "publish_rate": pub["rate"],
            "check": delivery_check(pub["sent"] * 100, received, False),
            "tool_cpu_per_million": _tool_cpu(pub, received)}


def latency(target: tuple, workdir: Path, duration: float, broker: Broker,
            series: Path | None = None) -> dict:
    """QoS 1 at a fixed 2,000 msg/s, 1 publisher -> 1 subscriber, measured by
    `actormq bench latency` (blocking sockets, a process each: the time from
    the publisher's send() to the subscriber's recv()). A broker with several
    workers and a port of each (`listener.tcp.worker_ports`) gets the
    subscriber on its first worker and the publisher on its second, so every
    message crosses the bus; the shared port would leave that to the kernel.
    `series`: a file for every message's send and receive time."""
    sub_port = ()
    ports = worker_ports(broker)
    if len(ports) > 1:
        target, sub_port = _with_port(target, ports[1]), ("--sub-port", ports[0])
    received = Run(["latency", *target, *sub_port, "-q", 1, "-r", 2000, "-d", duration,
                    *(("--series", series) if series else ())], quiet=False).result(duration + 60)
    lat = received["latency_us"] or {}
    return {"latency_p50": lat.get("p50"), "latency_p90": lat.get("p90"),
            "latency_p99": lat.get("p99"), "latency_p999": lat.get("p99.9"),
            "latency_max": lat.get("max"), "rate": received["rate"],
            "across_workers": len(ports) > 1,
            "check": delivery_check(received["sent"], received, True),
            "tool_cpu_per_million": _tool_cpu(received)}


def worker_ports(broker: Broker) -> list[int]:
    """The port of each worker, in worker order, read from the banner of a
    broker started with `listener.tcp.worker_ports` (none for other brokers)."""
    if not broker.own_ports:
        return []
    line = re.compile(r"worker (\d+) listening on \S+:(\d+)")
    deadline = time.monotonic() + START_TIMEOUT
    while len(found := line.findall(broker.log_tail(limit=None))) < broker.own_ports:
        if time.monotonic() > deadline:
            raise SuiteError(f"{broker.name}: no port of each worker in its banner")
        time.sleep(0.05)
    return [int(port) for _, port in sorted(found, key=lambda pair: int(pair[0]))]


def _with_port(target: tuple, port: int) -> tuple:
    at = target.index("-p") + 1
    return (*target[:at], port, *target[at + 1:])


def connections(target: tuple, workdir: Path, broker: Broker) -> dict:
    """2,000 connections, 50 at a time; broker memory per connection.

    The idle figures are taken before any client connected. Memory per
    connection is the slope: the RSS that a second batch of CONNECTIONS idle
    clients adds while the first batch stays connected. What a broker allocates
    once, at its first clients (code compiled or imported on first use, caches,
    allocator arenas), is then not divided among the clients as if each held a
    share of it; measured from the idle broker, the same code came out anywhere
    from 0.9 to 2.5 KiB at 2,000 clients, by how its modules had been loaded."""
    time.sleep(0.5)
    idle_rss = broker.rss()
    idle = {"idle_rss_mib": idle_rss / 2**20, "idle_pss_mib": broker.pss() / 2**20,
            "processes": len(broker.processes())}
    first = Run(["conn", *target, "-c", CONNECTIONS, "--concurrency", 50, "-d", FIRST_BATCH_HOLD_S,
                 "--ready-file", workdir / "conn-ready"])
    held_first = _rss_once_ready(broker, first, workdir / "conn-ready")
    second = Run(["conn", *target, "-c", CONNECTIONS, "--concurrency", 50, "-d", 1,
                  "--prefix", "second-", "--ready-file", workdir / "conn-ready-2"])
    held_both = _rss_once_ready(broker, second, workdir / "conn-ready-2")
    if first.proc.poll() is not None:       # the first batch left before the second was in
        held_both = None
    second.result(30)
    summary = first.result(FIRST_BATCH_HOLD_S + 30)
    connected = summary["connected"]
    return {**idle, "conn_rate": summary["rate"], "connected": connected,
            "kib_per_conn": (held_both - held_first) / 1024 / CONNECTIONS
            if connected == CONNECTIONS and held_first and held_both else None,
            "check": "ok" if connected == CONNECTIONS else f"FAIL {connected:,} connected"}


def _rss_once_ready(broker: Broker, run: Run, ready: Path, settle: float = 0.5) -> int | None:
    """The broker's highest RSS over `settle` seconds once `run` has every client connected."""
    deadline = time.monotonic() + 120
    while not ready.exists():
        if run.proc.poll() is not None or time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    held, until = 0, time.monotonic() + settle
    while time.monotonic() < until:
        held = max(held, broker.rss())
        time.sleep(0.1)
    return held


def offline_drain(target: tuple, workdir: Path) -> dict:
    """A persistent QoS 1 subscriber is offline while 20,000 messages are published;
    time from its reconnect to the last message. One round lasts a tenth of a
    second, where a busy moment of the machine weighs a lot: the broker runs
    DRAIN_ROUNDS rounds (each its own client and topic) and the median counts."""
    rounds = [_drain_round(target, f"drain{n}") for n in range(DRAIN_ROUNDS)]
    times = sorted(r["drain_s"] for r in rounds if r["drain_s"] is not None)
    failed = [r["check"] for r in rounds if r["check"] != "ok"]
    return {"drain_s": times[len(times) // 2] if len(times) == DRAIN_ROUNDS else None,
            "drain_rounds_s": [r["drain_s"] for r in rounds],
            "check": failed[0] if failed else "ok"}


def _drain_round(target: tuple, name: str) -> dict:
    session = [*target, "--prefix", f"{name}-", "-t", f"{name}/all", "-q", 1,
               "--no-clean", "-x", 3600]
    Run(["sub", *session, "--count", 0]).result(30)
    pub = Run(["pub", *target, "-t", f"{name}/all", "-q", 1, "-L", DRAIN_MESSAGES,
               "--window", 100, "-d", 120]).result(150)
    received = Run(["sub", *session, "--count", DRAIN_MESSAGES, "-d", 60,
                    "--idle", 5]).result(90)
    return {"drain_s": received["connect_to_last_s"],
            "check": delivery_check(pub["sent"], received, True)}


def offline_publish(target: tuple, workdir: Path, publishers: int) -> dict:
    """QoS 1, window 100, `publishers` clients -> one persistent subscriber that is
    offline: every message is queued (and in the disc modes committed before its
    PUBACK). OFFLINE_MESSAGES in all; the subscriber then takes them to check.
    A round lasts a second or two, where a busy moment of the machine weighs a
    lot: the broker runs OFFLINE_ROUNDS rounds and the median rate counts."""
    session = [*target, "--prefix", "offline-", "-t", "offline/#", "-q", 1, "--no-clean", "-x", 3600]
    rounds = []
    for _ in range(OFFLINE_ROUNDS):
        Run(["sub", *session, "--count", 0]).result(30)
        pub = Run(["pub", *target, "-c", publishers, "-t", "offline/%i", "-q", 1, "--window", 100,
                   "-L", OFFLINE_MESSAGES // publishers, "-d", 120]).result(150)
        received = Run(["sub", *session, "--count", pub["sent"], "-d", 60, "--idle", 5]).result(90)
        rounds.append({"rate": pub["rate"], "check": delivery_check(pub["sent"], received, True),
                       "tool_cpu_per_million": _tool_cpu(pub, received)})
    rates = sorted(r["rate"] for r in rounds)
    failed = [r["check"] for r in rounds if r["check"] != "ok"]
    return {"rate": rates[len(rates) // 2], "rounds": [round(r["rate"]) for r in rounds],
            "check": failed[0] if failed else "ok",
            "tool_cpu_per_million": sorted(r["tool_cpu_per_million"] or 0 for r in rounds)[len(rounds) // 2]}


def _tool_cpu(*summaries: dict) -> float | None:
    """CPU seconds of publisher + subscriber per million messages received."""
    received = summaries[-1]["received"]
    return round(sum(s["cpu_s"] for s in summaries) / received * 1e6, 2) if received else None


SCENARIOS = {
    "qos0_fanin": lambda target, wd, args, broker: fan_in(target, wd, args.duration, 0),
    "qos0_fanin_tls": lambda target, wd, args, broker: fan_in(target, wd, args.duration, 0),
    "qos1_fanin": lambda target, wd, args, broker: fan_in(target, wd, args.duration, 1),
    "fanout": lambda target, wd, args, broker: fan_out(target, wd, args.duration, args.fanout_rate),
    "qos1_latency": lambda target, wd, args, broker: latency(target, wd, args.duration, broker),
    "connections": lambda target, wd, args, broker: connections(target, wd, broker),
    "offline_drain": lambda target, wd, args, broker: offline_drain(target, wd),
    "offline_drain_disc_only": lambda target, wd, args, broker: offline_drain(target, wd),
    **{f"offline_pub{n}_{mode}": (lambda target, wd, args, broker, n=n: offline_publish(target, wd, n))
       for n in (1, 4) for mode in ("disc_sync", "disc_nosync", "ram")},
}

# actormq settings of a scenario; other brokers run only the scenarios without any
# (mosquitto keeps nothing on disk, so it runs the ram variant of offline_pub)
_OFFLINE_MODES = {"disc_sync": {"queue.storage": "disc", "storage.sync": "on"},
                  "disc_nosync": {"queue.storage": "disc", "storage.sync": "off"},
                  "ram": {"queue.storage": "ram"}}
SETTINGS = {
    "qos1_latency": {"listener.tcp.worker_ports": "true"},   # publisher, subscriber: two workers
    "offline_drain_disc_only": {"queue.storage": "disc_only"},
    **{f"offline_pub{n}_{mode}": settings for n in (1, 4) for mode, settings in _OFFLINE_MODES.items()},
}
# Mosquitto leaves Nagle's algorithm on unless told: its first PUBLISH to the
# latency subscriber waited for the ACK of its SUBACK, and the 16 messages
# after it with it (5-8 ms); actormq's sockets all have TCP_NODELAY
MOSQUITTO_SETTINGS = {"qos1_latency": {"set_tcp_nodelay": "true"}}
NEEDS_SETTINGS = {name for name in SETTINGS if not name.endswith("_ram") and name != "qos1_latency"}


TLS_SCENARIOS = {"qos0_fanin_tls"}


def run_scenario(name: str, broker_name: str, spec: BrokerSpec | str, args) -> dict:
    """One scenario on a fresh broker; never raises."""
    if isinstance(spec, str):
        return {"error": spec}
    if name in NEEDS_SETTINGS and not spec.takes_settings:
        return {"error": "not applicable"}
    with tempfile.TemporaryDirectory(prefix=f"bench-{broker_name}-") as tmp:
        workdir = Path(tmp)
        broker = Broker(broker_name, free_port(), workdir)
        try:
            tls = None
            if name in TLS_SCENARIOS:
                tls = TlsListener(free_port(), *make_certificates(workdir))
            settings = SETTINGS.get(name, {}) if spec.takes_settings \
                else spec.own_settings.get(name, {})
            if settings.get("listener.tcp.worker_ports") == "true":
                broker.own_ports = spec.workers
            broker.start(spec.command(broker.port, workdir, settings, tls))
            cpu = broker.cpu()
            started = time.monotonic()
            target = ("-p", broker.port, *spec.client_args)
            if tls is not None:
                target = ("-p", tls.port, "--cafile", tls.cafile, *spec.client_args)
            result = SCENARIOS[name](target, workdir, args, broker)
            result["broker_cpu_s"] = round(broker.cpu() - cpu, 2)
            result["wall_s"] = round(time.monotonic() - started, 2)
            return result
        except (SuiteError, OSError, ValueError, KeyError, psutil.Error,
                subprocess.CalledProcessError) as exc:
            return {"error": str(exc) or type(exc).__name__}
        finally:
            broker.stop()


# -- output ----------------------------------------------------------------------------

# (scenario, metric, label, format)
ROWS = [
    ("qos0_fanin", "rate", "QoS 0 fan-in 4→1, 64 B (msg/s)", "{:,.0f}"),
    ("qos0_fanin_tls", "rate", "QoS 0 fan-in 4→1 over TLS, 64 B (msg/s)", "{:,.0f}"),
    ("qos0_fanin_tls", "tls_ratio", "QoS 0 fan-in, TLS / plain TCP", "{:.2f}"),
    ("qos1_fanin", "rate", "QoS 1 fan-in 4→1, window 100 (msg/s)", "{:,.0f}"),
    ("fanout", "rate", "fan-out 1→100, QoS 0 (msg/s received)", "{:,.0f}"),
    ("qos1_latency", "latency_p50", "QoS 1 latency at 2,000 msg/s, p50 (µs)", "{:,.0f}"),
    ("qos1_latency", "latency_p90", "QoS 1 latency at 2,000 msg/s, p90 (µs)", "{:,.0f}"),
    ("qos1_latency", "latency_p99", "QoS 1 latency at 2,000 msg/s, p99 (µs)", "{:,.0f}"),
    ("qos1_latency", "latency_p999", "QoS 1 latency at 2,000 msg/s, p99.9 (µs)", "{:,.0f}"),
    ("qos1_latency", "latency_max", "QoS 1 latency at 2,000 msg/s, max (µs)", "{:,.0f}"),
    ("connections", "conn_rate", "2,000 connections, 50 at a time (conn/s)", "{:,.0f}"),
    ("connections", "kib_per_conn", "broker memory per connection (KiB)", "{:,.1f}"),
    ("connections", "idle_rss_mib", "idle broker, RSS of all its processes (MiB)", "{:,.1f}"),
    ("connections", "idle_pss_mib", "idle broker, PSS of all its processes (MiB)", "{:,.1f}"),
    ("connections", "processes", "idle broker, processes", "{:,.0f}"),
    ("offline_drain", "drain_s", f"offline drain of 20,000 QoS 1, median of {DRAIN_ROUNDS} (s)", "{:.3f}"),
    ("offline_drain_disc_only", "drain_s", "offline drain of 20,000 QoS 1, disc_only (s)", "{:.3f}"),
    *((f"offline_pub{n}_{mode}", "rate",
       f"QoS 1 to an offline persistent subscriber, {n} publisher{'s' if n > 1 else ''}, {label}, "
       f"median of {OFFLINE_ROUNDS} (msg/s)", "{:,.0f}")
      for n in (1, 4) for mode, label in (("disc_sync", "disc, sync on"), ("disc_nosync", "disc, sync off"),
                                          ("ram", "ram"))),
    *((f"offline_pub{n}_{mode}", "ram_ratio",
       f"offline subscriber, {n} publisher{'s' if n > 1 else ''}: {label} / ram", "{:.2f}")
      for n in (1, 4) for mode, label in (("disc_sync", "disc, sync on"), ("disc_nosync", "disc, sync off"))),
]
REFERENCE_KEYS = {("qos0_fanin", "rate"): "qos0_fanin", ("qos1_fanin", "rate"): "qos1_fanin",
                  ("fanout", "rate"): "fanout", ("qos1_latency", "latency_p50"): "latency_p50",
                  ("qos1_latency", "latency_p99"): "latency_p99",
                  ("connections", "conn_rate"): "conn_rate",
                  ("connections", "kib_per_conn"): "kib_per_conn",
                  ("offline_drain", "drain_s"): "drain_s"}


_NOT_RUN = ("not installed", "not applicable")


def add_ratios(results: dict) -> None:
    """Each broker's QoS 0 fan-in rate over TLS divided by its rate over plain TCP,
    and its offline publish rates in the disc modes divided by the ram mode's."""
    pairs = [("qos0_fanin", "qos0_fanin_tls", "tls_ratio"),
             *((f"offline_pub{n}_ram", f"offline_pub{n}_{mode}", "ram_ratio")
               for n in (1, 4) for mode in ("disc_sync", "disc_nosync"))]
    for per_broker in results.values():
        for base_name, other_name, key in pairs:
            base, other = per_broker.get(base_name), per_broker.get(other_name)
            if base and other and base.get("rate") and other.get("rate"):
                other[key] = other["rate"] / base["rate"]


def cell(result: dict | None, metric: str, fmt: str) -> str:
    if result is None:
        return ""
    if "error" in result:
        return result["error"] if result["error"] in _NOT_RUN else "error"
    value = result.get(metric)
    return "-" if value is None else fmt.format(value)


def markdown(results: dict, scenarios: list[str], args) -> str:
    brokers = list(results)
    refs = [name for name in REFERENCE if name in brokers]
    head = ["scenario", *brokers, *(f"{name} (reference)" for name in refs)]
    lines = ["# Benchmark results", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
             f"{args.duration:g} s per throughput scenario, fan-out publish rate "
             f"{args.fanout_rate:,.0f}/s; latency with several workers: subscriber on "
             "worker 0, publisher on worker 1.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    add_ratios(results)
    for scenario, metric, label, fmt in ROWS:
        if scenario not in scenarios:
            continue
        row = [label, *(cell(results[b].get(scenario), metric, fmt) for b in brokers),
               *(fmt.format(REFERENCE[r][REFERENCE_KEYS[scenario, metric]])
                 if (scenario, metric) in REFERENCE_KEYS else "" for r in refs)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Delivery check (QoS 1/2 must lose and duplicate nothing; "
              "QoS 0 loss is reported, not a failure), broker CPU seconds, tool CPU:", "",
              "| scenario | " + " | ".join(brokers) + " |", "|" + "---|" * (len(brokers) + 1)]
    for scenario in scenarios:
        lines.append(f"| {scenario} | " + " | ".join(
            _detail(results[b].get(scenario)) for b in brokers) + " |")
    errors = [f"- {b} / {s}: {_one_line(r['error'])}" for b in brokers
              for s, r in results[b].items() if r.get("error", "not installed") not in _NOT_RUN]
    return "\n".join(lines + (["", "Errors:", "", *errors] if errors else [])) + "\n"


def _one_line(text: str) -> str:
    """First and last line of a (log tail) message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " … ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else ""


def _detail(result: dict | None) -> str:
    if not result:
        return ""
    if "error" in result:
        return result["error"] if result["error"] in _NOT_RUN else "error"
    parts = [result.get("check", "")]
    if result.get("broker_cpu_s") is not None:
        parts.append(f"broker {result['broker_cpu_s']:.1f} s CPU")
    if result.get("tool_cpu_per_million") is not None:
        parts.append(f"tool {result['tool_cpu_per_million']:.2f} s/M msg")
    return ", ".join(p for p in parts if p)


def chart(results: dict, path: Path) -> bool:
    """A bar chart of the throughput rows; False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [(s, m, label) for s, m, label, _ in ROWS if m in ("rate", "conn_rate")]
    brokers = list(results)
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / max(1, len(brokers))
    for i, broker in enumerate(brokers):
        values = [(results[broker].get(s) or {}).get(m) or 0 for s, m, _ in rows]
        ax.bar([x + i * width for x in range(len(rows))], values, width, label=broker)
    ax.set_xticks([x + width * (len(brokers) - 1) / 2 for x in range(len(rows))])
    ax.set_xticklabels([label.split(" (")[0] for _, _, label in rows], rotation=15, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("per second (log)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="actormq-w1,actormq-w2,mosquitto,amqtt")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds of each throughput / latency scenario")
    parser.add_argument("--fanout-rate", type=float, default=4000.0,
                        help="publishes per second in the fan-out scenario")
    parser.add_argument("--amqtt-bin", default=None, help="path of the amqtt script")
    parser.add_argument("--out", default="bench-results", type=Path)
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    commands = broker_commands([b for b in args.brokers.split(",") if b], args.amqtt_bin)
    results: dict = {name: {} for name in commands}
    for name, spec in commands.items():
        for scenario in scenarios:
            result = run_scenario(scenario, name, spec, args)
            results[name][scenario] = result
            print(f"{name:12} {scenario:14} {json.dumps(result)}", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(results, scenarios, args))
    drew = chart(results, args.out / "chart.png")
    print((args.out / "results.md").read_text())
    print(f"wrote {args.out}/results.md, results.json" + (", chart.png" if drew else
                                                           " (no chart: matplotlib missing)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
