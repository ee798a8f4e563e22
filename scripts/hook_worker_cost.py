#!/usr/bin/env python3
"""Machine instructions per message of a real broker's worker with a notification hook, by callgrind.

The broker (`-w 1`) runs under `valgrind --tool=callgrind` (its worker and every thread
and library of it; the notification sender is left out and, unless `--sender running`,
suspended once it is up, so that the worker drops every event once its credit is spent,
as at saturation); bench publishers (4 -> 1 subscriber, QoS 0, 64 B, as in
bench_webhooks.py's fan-in) publish `--messages` messages at `--rate` msg/s (0: as fast
as the worker under callgrind takes them, so that its reads are full as at saturation)
after a warm-up; the worker's counters are zeroed before and dumped after, and the
instructions of that interval per message the subscriber received are printed (`--keep
DIR` keeps the interval's dump, for `callgrind_annotate` or a diff per function).

    python scripts/hook_worker_cost.py none|webhook|exhook [--rate 300] [--messages 3000]

The same on a busy machine as on a quiet one, for what the worker does per message or
per read. What it does per unit of time (a timer, a poll) weighs some 50 times more per
message than at full speed, the worker being that much slower under callgrind: a
difference that moves with `--rate` (or with the machine's load at rate 0) is of that kind.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_suite as suite  # noqa: E402
import bench_webhooks as webhooks  # noqa: E402

START_TIMEOUT = 600.0
QUEUE_SIZE = 1000       # the credit a suspended sender never returns: spent in the warm-up


def settings_of(variant: str, helper: webhooks.Helper | None) -> dict[str, str]:
    if variant == "webhook":
        return {"webhooks.p.hook": "on_publish", "webhooks.p.endpoint": f"http://{suite.HOST}:{helper.port}/hook"}
    if variant == "exhook":
        return {"exhook.server.publish.url": f"http://{suite.HOST}:{helper.port}",
                "exhook.server.publish.message_publish": "notify"}
    return {}


def helper_of(variant: str, workdir: Path) -> webhooks.Helper | None:
    if variant == "webhook":
        return webhooks.Helper(workdir, "--serve-http")
    if variant == "exhook":
        helper = webhooks.Helper(workdir, "--serve-grpc", "message.publish")
        time.sleep(1)
        webhooks.wait_serving([helper.port])
        return helper
    return None


def start(workdir: Path, settings: dict[str, str], out: Path) -> suite.Broker:
    port = suite.free_port()
    queue = {"webhooks.queue_size": str(QUEUE_SIZE), "exhook.queue_size": str(QUEUE_SIZE)}
    command = suite.actormq_command(1)(port, workdir, settings and settings | queue)
    valgrind = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                f"--trace-children-skip-by-arg=*{webhooks.SENDER_MODULE}*,*resource_tracker*",
                f"--callgrind-out-file={out}/cg.%p"]
    broker = suite.Broker("actormq-w1", port, workdir)
    log = open(workdir / "broker.log", "wb")
    broker.proc = subprocess.Popen(valgrind + command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                   env=suite._env(), start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not suite.port_open(port):
        if broker.proc.poll() is not None or time.monotonic() > deadline:
            broker.stop()
            raise suite.SuiteError(f"the broker did not start: {broker.log_tail()}")
        time.sleep(0.5)
    return broker


def worker_pid(broker: suite.Broker) -> int:
    """The worker's process: with one worker, the broker's own."""
    for process in broker.processes():
        if "worker" in " ".join(process.cmdline()):
            return process.pid
    return broker.proc.pid


def senders_up(broker: suite.Broker, has_sender: bool, suspend: bool) -> None:
    """Until the notification sender is up (it lowers its priority then); suspend it with `suspend`."""
    if not has_sender:
        return
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        senders = [process for process in broker.processes()[1:]    # the first is valgrind's, whose
                   if webhooks.SENDER_MODULE in " ".join(process.cmdline())]  # arguments name the sender
        if senders and all(process.nice() > 0 for process in senders):
            for process in senders if suspend else ():
                process.suspend()
            return
        time.sleep(0.2)
    raise suite.SuiteError("the notification sender did not come up")


def publish(port: int, workdir: Path, messages: int, rate: float) -> int:
    """Publish `messages` (4 clients) at `rate` (0: as fast as taken); what the subscriber got."""
    target = ("-p", port)
    sub = suite.start_subscriber(workdir, *target, "-t", "fanin/#", "-q", 0, "-d", 3600, "--idle", 5)
    pace = ("-r", rate) if rate else ()
    try:
        suite.Run(["pub", *target, "-c", 4, "-t", "fanin/%i", "-q", 0, "-s", 64, "--window", 100,
                   "-L", messages // 4, "-d", 3600, *pace]).result(3600)
    except suite.SuiteError:
        sub.proc.kill()
        raise
    return sub.result(3600)["received"]


def control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def dumped_total(out: Path, pid: int) -> tuple[int, Path]:
    dumps = sorted(out.glob(f"cg.{pid}.*"), key=lambda path: int(path.suffix[1:]))
    last = dumps[-1]
    for line in last.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]), last
    raise suite.SuiteError(f"no total in {last}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=("none", "webhook", "exhook"))
    parser.add_argument("--rate", type=float, default=0.0, help="msg/s of the 4 publishers (0: as fast as taken)")
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=2000,
                        help="messages before the counters are zeroed (more than the sender's credit)")
    parser.add_argument("--sender", choices=("stopped", "running"), default="stopped",
                        help="running: the sender delivers (below the broker), returning credit")
    parser.add_argument("--keep", metavar="DIR", help="copy the interval's callgrind dump here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir, out = Path(tmp), Path(tmp) / "cg"
        out.mkdir()
        helper = helper_of(args.variant, workdir)
        broker = None
        try:
            broker = start(workdir, settings_of(args.variant, helper), out)
            senders_up(broker, helper is not None, args.sender == "stopped")
            pid = worker_pid(broker)
            publish(broker.port, workdir, args.warmup, args.rate)
            control("-z", pid)
            received = publish(broker.port, workdir, args.messages, args.rate)
            control("-d", pid)
            total, dump = dumped_total(out, pid)
            print(f"{args.variant} rate={args.rate:g} messages={received}: {total / max(1, received):,.0f} "
                  f"instructions/msg")
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                target = Path(args.keep) / f"cg.{args.variant}.{int(args.rate)}"
                target.write_bytes(dump.read_bytes())
        finally:
            if broker is not None:
                for process in broker.processes():
                    try:
                        process.resume()
                    except psutil.Error:
                        pass
                broker.stop()
            if helper is not None:
                helper.process.terminate()
                helper.process.wait(10)


if __name__ == "__main__":
    main()
