"""What an idle connected client costs a `-w 1` broker, by allocation site.

Runs the broker in this process (the one-process layout of `-w 1`), opens
N idle MQTT 3.1.1 clients with `actormq bench conn` from another process,
and prints the growth of the broker's RSS per connection (held, and at its
peak until they have all disconnected, as `bench_suite.py` samples it) and, with
--tracemalloc, of its Python heap per connection, grouped by source line (or
by file or traceback with --by):

    python scripts/conn_footprint.py --connections 10000 --tracemalloc

RSS counts what the allocator took from the system, including what Python
does not see (the event loop's C objects, libuv handles); tracemalloc slows
the broker and grows its own RSS, so take the RSS figure from a run without it.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from actormq.conf.load import load_config  # noqa: E402
from actormq.node import Node  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the broker did not listen on {port}")


def measure(args, port: int, workdir: Path, report: dict) -> None:
    """The measuring thread: baseline, clients, snapshot, then stop the broker."""
    try:
        wait_port(port)
        time.sleep(0.5)
        gc.collect()
        before_rss = rss()
        before = tracemalloc.take_snapshot() if args.tracemalloc else None
        ready = workdir / "ready"
        bench = subprocess.Popen(
            [sys.executable, "-m", "actormq", "bench", "conn", "-p", str(port), "-c", str(args.connections),
             "--concurrency", "50", "-k", str(args.keepalive), "-d", str(args.hold), "--ready-file", str(ready),
             "--quiet", "--json", *(["--no-clean"] if args.persistent else [])],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
        while not ready.exists():
            if bench.poll() is not None:
                raise SystemExit("bench conn ended before every client connected")
            time.sleep(0.1)
        time.sleep(1.0)
        gc.collect()
        report["rss"] = (rss() - before_rss) / args.connections
        if before is not None:
            after = tracemalloc.take_snapshot()
            filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
            stats = after.filter_traces(filters).compare_to(before.filter_traces(filters), args.by)
            report["heap"] = sum(stat.size_diff for stat in stats) / args.connections
            report["top"] = [stat for stat in stats if stat.size_diff > 0][:args.top]
        peak = rss()
        while bench.poll() is None:      # and while they disconnect
            peak = max(peak, rss())
            time.sleep(0.05)
        report["peak"] = (peak - before_rss) / args.connections
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds the clients stay after the snapshot")
    parser.add_argument("--tracemalloc", action="store_true", help="also the Python heap by line")
    parser.add_argument("--by", choices=("lineno", "filename", "traceback"), default="lineno")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keepalive", type=int, default=300, help="the clients' keepalive (s)")
    parser.add_argument("--persistent", action="store_true", help="persistent sessions (clean session 0)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a config key of the broker (repeatable)")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start(1 if args.by != "traceback" else 8)
    port = free_port()
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="conn-footprint-") as tmp:
        workdir = Path(tmp)
        config = load_config(None, overrides={
            "node.workers": "1", "listener.tcp.host": "127.0.0.1", "listener.tcp.port": str(port),
            "storage.dir": str(workdir / "data"), "sys_interval": "0", "log.connections": "off",
            "management.listener.http": "0", **dict(item.split("=", 1) for item in args.settings)})
        threading.Thread(target=measure, args=(args, port, workdir, report), daemon=True).start()
        Node(config).run()
    print(f"RSS per idle connection: {report['rss']:,.0f} bytes ({report['rss'] / 1024:.2f} KiB); "
          f"peak until they all disconnected: {report['peak'] / 1024:.2f} KiB")
    if "heap" in report:
        print(f"Python heap per idle connection (tracemalloc): {report['heap']:,.0f} bytes")
        for stat in report["top"]:
            print(f"{stat.size_diff / args.connections:8.1f} B {stat.count_diff / args.connections:6.2f} blocks  "
                  f"{stat.traceback}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
