"""Many idle connections held on one node: does memory stay flat, does a fresh
client still get quick answers?

Starts `actormq run -w WORKERS` on a free loopback port, opens CONNECTIONS
idle MQTT 3.1.1 clients (keepalive 300 s: each sends a PINGREQ every 150 s,
and the first connected do not time out while the last connect) from several
`actormq bench conn` load generators, each with its own 127.0.0.x source
address (one source address has about 28,000 ephemeral ports, and one
process may hold only as many sockets as its descriptor limit), holds them
for HOLD seconds and every SAMPLE seconds records:

- the RSS of every broker process (and their sum),
- a fresh client's CONNECT -> CONNACK time and the round trip of a QoS 0
  message to itself (PUBLISH -> the same PUBLISH back; it subscribed first).

Prints a table (markdown) and, with --json, writes every sample.

    python scripts/bench_idle.py --connections 100000 --hold 600 --workers 6

Needs a descriptor limit (ulimit -n) above CONNECTIONS / WORKERS + a few
hundred for each worker and above CONNECTIONS / GENERATORS for each generator.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actormq.transport.codec import Connect, Publish, Subscribe, Subscription, encode  # noqa: E402

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
PER_GENERATOR_RESERVE = 200     # descriptors a generator needs beside its clients
PER_WORKER_RESERVE = 300        # and a worker beside its connections
HOLD_MARGIN = 30.0              # seconds the generators hold on after the last sample


def main() -> int:
    args = _arguments()
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    generators = args.generators or math.ceil(args.connections / max(1, limit - PER_GENERATOR_RESERVE))
    per_worker = args.connections / args.workers * 1.05
    if per_worker + PER_WORKER_RESERVE > limit:
        print(f"bench_idle: {args.connections:,} connections over {args.workers} workers is about "
              f"{per_worker:,.0f} per worker, above the descriptor limit {limit:,}: use more workers",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))     # stop the broker on the way out
    workdir = Path(tempfile.mkdtemp(prefix="actormq-idle-"))
    broker = _start_broker(args, workdir)
    try:
        return _run(args, broker, workdir, generators)
    finally:
        _stop(broker)
        shutil.rmtree(workdir, ignore_errors=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--hold", type=float, default=600.0, help="seconds to hold them")
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--generators", type=int, default=0,
                        help="load generator processes (default: as few as the descriptor limit allows)")
    parser.add_argument("--concurrency", type=int, default=100, help="connects in flight per generator")
    parser.add_argument("--keepalive", type=int, default=300, help="the clients' keepalive (s)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--json", type=Path, default=None, help="write every sample to this file")
    return parser.parse_args()


# -- the broker ---------------------------------------------------------------------------


def _start_broker(args, workdir: Path) -> subprocess.Popen:
    log = open(workdir / "broker.log", "wb")
    command = [sys.executable, "-m", "actormq", "run", "-w", str(args.workers), "--host", HOST,
               "--port", "0", "--data-dir", str(workdir / "data"),
               "--set", "management.listener.http=0", "--set", "log.connections=off"]
    broker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while "workers:" not in _log(workdir):
        if broker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench_idle: the broker did not start: {_log(workdir)[-400:]}")
        time.sleep(0.1)
    broker.port = int(_log(workdir).split("listening on ")[1].split()[0].rsplit(":", 1)[1])
    return broker


def _log(workdir: Path) -> str:
    return (workdir / "broker.log").read_text(errors="replace")


def _stop(broker: subprocess.Popen) -> None:
    if broker.poll() is None:
        broker.terminate()
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()


def _memory(broker: subprocess.Popen) -> dict:
    root = psutil.Process(broker.pid)
    per_process = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            per_process[process.pid] = process.memory_info().rss
        except psutil.Error:
            pass
    return {"rss_total": sum(per_process.values()), "rss": per_process}


# -- the load -----------------------------------------------------------------------------


def _run(args, broker, workdir: Path, generators: int) -> int:
    idle_memory = _memory(broker)["rss_total"]
    shares = [args.connections // generators + (i < args.connections % generators) for i in range(generators)]
    # each generator holds its clients from its own last CONNACK on: long enough to
    # outlast the samples, then it disconnects and prints its summary
    hold = args.hold + HOLD_MARGIN
    started = time.monotonic()
    procs = []
    for index, share in enumerate(shares):
        ready = workdir / f"ready-{index}"
        command = [sys.executable, "-m", "actormq", "bench", "conn", "-h", HOST, "-p", str(broker.port),
                   "-c", str(share), "-n", str(sum(shares[:index])), "--prefix", "idle-",
                   "--source-address", f"127.0.0.{index + 2}", "--concurrency", str(args.concurrency),
                   "-k", str(args.keepalive),
                   "-d", str(hold), "--ready-file", str(ready),
                   "--json", "--quiet"]
        procs.append((subprocess.Popen(command, stdout=subprocess.PIPE, text=True), ready))
    while not all(ready.exists() for _, ready in procs):
        if any(proc.poll() is not None for proc, _ in procs):
            raise SystemExit("bench_idle: a load generator stopped before it connected its clients")
        time.sleep(0.2)
    connect_time = time.monotonic() - started
    connected = sum(int(ready.read_text() or 0) for _, ready in procs)
    print(f"{connected:,} connections in {connect_time:.1f} s ({connected / connect_time:,.0f}/s over "
          f"{generators} generators); broker idle RSS before {idle_memory / 2**20:.1f} MiB", flush=True)

    samples = []
    hold_start = time.monotonic()
    while time.monotonic() - hold_start < args.hold:
        sample = {"t": round(time.monotonic() - hold_start, 1), **_memory(broker), **_probe(broker.port)}
        samples.append(sample)
        print(f"t={sample['t']:6.0f} s  RSS {sample['rss_total'] / 2**20:7.1f} MiB  "
              f"connect {sample['connect_ms']:6.2f} ms  round trip {sample['round_trip_ms']:6.2f} ms",
              flush=True)
        time.sleep(max(0.0, args.sample - (time.monotonic() - hold_start - sample["t"])))
    summaries = []
    for proc, _ in procs:
        out, _ = proc.communicate(timeout=HOLD_MARGIN + 120)
        if out.strip():
            summaries.append(json.loads(out))
    report = _report(args, connected, connect_time, idle_memory, samples, summaries)
    print(report)
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "generators": summaries}, indent=1, default=str))
    return 0 if connected == args.connections else 1


def _probe(port: int) -> dict:
    """A fresh client: CONNECT -> CONNACK, then a QoS 0 message to itself and back."""
    topic = f"probe/{os.getpid()}/{time.monotonic_ns()}"
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        sock.sendall(encode(Connect(client_id=topic.replace("/", "-")), 4))
        _read(sock, 4)
        connect_ms = (time.perf_counter() - start) * 1000
        sock.sendall(encode(Subscribe(1, (Subscription(topic, 0),)), 4))
        _read(sock, 5)
        message = encode(Publish(topic, b"x" * 16), 4)
        start = time.perf_counter()
        sock.sendall(message)
        _read(sock, len(message))
        round_trip_ms = (time.perf_counter() - start) * 1000
        sock.sendall(b"\xe0\x00")      # DISCONNECT
    return {"connect_ms": round(connect_ms, 3), "round_trip_ms": round(round_trip_ms, 3)}


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the probe's connection")
        data += chunk
    return data


def _report(args, connected, connect_time, idle_memory, samples, summaries) -> str:
    rss = [s["rss_total"] / 2**20 for s in samples]
    connects = [s["connect_ms"] for s in samples]
    trips = [s["round_trip_ms"] for s in samples]
    first, last = rss[0], rss[-1]
    rates = [s.get("rate") or 0 for s in summaries]
    rows = [
        ("connections held", f"{connected:,} of {args.connections:,}, {args.workers} workers, "
                             f"{len(summaries)} generators, {args.hold:,.0f} s"),
        ("connect rate (all generators)", f"{connected / connect_time:,.0f}/s"),
        ("connect rate per generator (`actormq bench conn`)", ", ".join(f"{r:,.0f}/s" for r in rates)),
        ("broker RSS idle before / first / last / max (MiB)",
         f"{idle_memory / 2**20:.1f} / {first:.1f} / {last:.1f} / {max(rss):.1f}"),
        ("RSS per connection (KiB)", f"{(first * 2**20 - idle_memory) / 1024 / max(1, connected):.2f}"),
        ("RSS drift over the hold", f"{last - first:+.1f} MiB ({(last - first) / first * 100:+.2f} %)"),
        ("fresh client CONNECT->CONNACK, median / max (ms)",
         f"{statistics.median(connects):.2f} / {max(connects):.2f}"),
        ("fresh client round trip, median / max (ms)", f"{statistics.median(trips):.2f} / {max(trips):.2f}"),
    ]
    return "\n".join(["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


if __name__ == "__main__":
    sys.exit(main())
