#!/usr/bin/env python3
"""What the kernel saw of the brokers during `qos1_latency`: the scenario of
`bench_suite.py` (2,000 msg/s QoS 1; with several workers the subscriber on
worker 0 and the publisher on worker 1), run against each broker in turn,
several rounds interleaved, under `perf record` of the scheduler's events.

    chrt -f 20 python scripts/latency_sched.py --brokers actormq-w1,actormq-w2,mosquitto --rounds 3

`--variant KEY=VALUE` (given several times) runs each actormq broker once per
variant in every round: an A/B of a setting, interleaved. Without `chrt`
(the fair scheduler) for `worker.sched_slice_us`.

For every process of the broker it reports, beside the probe's percentiles:

    runs        how long the process stayed on a core each time it got one
                (p50 / p99 / max, and how many runs and how much time in runs
                over 1 ms): work of its own that holds back what comes next
    wake-ups    from the wake-up to running on a core (p50 / p99 / max): the
                kernel's and the other work's share
    steal       the time the hypervisor took from the machine's cores during
                the run (/proc/stat), which the guest sees as a long run of
                whatever was on the core

`--profile` samples the cores 20,000 times a second as well and lists the
functions (native frames: the interpreter, its C code, the kernel) the
broker's main thread ran inside its runs over 1 ms against the rest.
Needs `perf` and root; other work on the machine shows up as it is.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_suite  # noqa: E402  (the suite's brokers and scenario)

EVENT = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$")
LONG_S = 0.001


def steal_ticks() -> int:
    with open("/proc/stat") as stat:
        return int(stat.readline().split()[8])


def start_perf(out: Path, profile: bool) -> list[subprocess.Popen]:
    clock = ["-k", "CLOCK_MONOTONIC", "-a"]
    runs = [subprocess.Popen(["perf", "record", *clock, "-e", "sched:sched_switch", "-e",
                              "sched:sched_wakeup", "-o", str(out / "sched.data")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    if profile:
        runs.append(subprocess.Popen(["perf", "record", *clock, "-e", "cpu-clock", "-F", "20000",
                                      "-g", "-o", str(out / "profile.data")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    return runs


def stop_perf(runs: list[subprocess.Popen]) -> None:
    for run in runs:
        run.send_signal(signal.SIGINT)
    for run in runs:
        run.wait(30)


def sched_events(data: Path):
    return parse_events(subprocess.run(["perf", "script", "-i", str(data), "-F",
                                        "comm,pid,tid,cpu,time,event,trace"],
                                       capture_output=True, text=True, check=True).stdout)


def lost_events(data: Path) -> int:
    """Events perf could not write in time (a loaded machine): runs that
    span them look longer than they were."""
    stats = subprocess.run(["perf", "report", "-i", str(data), "--stats"],
                           capture_output=True, text=True).stdout
    return sum(int(line.split(":")[1].split()[0]) for line in stats.splitlines()
               if line.strip().startswith("LOST") and ":" in line)


def parse_events(text: str):
    """(time, event, its fields) of each line of `perf script`."""
    for line in text.splitlines():
        match = EVENT.match(line)
        if match:
            yield float(match.group(5)), match.group(6), match.group(7)


def runs_and_wakeups(events, tids: set[str], since: float, until: float):
    """tid -> [(start, length)] of its runs, tid -> [wake-up delays], in [since, until]."""
    runs, delays = collections.defaultdict(list), collections.defaultdict(list)
    started, woken = {}, {}
    for at, event, rest in events:
        if event == "sched:sched_switch":
            prev = re.search(r"prev_pid=(\d+)", rest).group(1)
            nxt = re.search(r"next_pid=(\d+)", rest).group(1)
            if prev in started:
                begun = started.pop(prev)
                if since <= begun <= until:
                    runs[prev].append((begun, at - begun))
            if nxt in tids:
                started[nxt] = at
                if nxt in woken and since <= at <= until:
                    delays[nxt].append(at - woken.pop(nxt))
        elif event == "sched:sched_wakeup":
            target = re.search(r" pid=(\d+)", rest).group(1)
            if target in tids:
                woken[target] = at
    return runs, delays


def quantiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e6  # noqa: E731
    return f"p50 {pick(0.5):.0f} / p99 {pick(0.99):.0f} / max {ordered[-1] * 1e6:.0f} µs"


def profile_long_runs(data: Path, tid: str, long_runs: list[tuple[float, float]]) -> list[str]:
    """The leaf functions of the samples inside the long runs against the rest."""
    text = subprocess.run(["perf", "script", "-i", str(data), "--tid", tid, "-F", "time,ip,sym"],
                          capture_output=True, text=True).stdout
    starts = [start for start, _ in long_runs]
    inside, outside = collections.Counter(), collections.Counter()
    at, leaf = None, None
    for line in text.splitlines() + [""]:
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            at, leaf = float(line.strip()[:-1]), None
        elif line.strip() and at is not None and leaf is None:
            leaf = line.split(None, 1)[-1].strip()
            i = bisect.bisect_right(starts, at) - 1
            (inside if i >= 0 and at <= sum(long_runs[i]) else outside)[leaf] += 1
    total_in, total_out = sum(inside.values()) or 1, sum(outside.values()) or 1
    return [f"      {count / total_in:6.1%} inside, {outside[name] / total_out:6.1%} outside  {name}"
            for name, count in inside.most_common(12)]


def one_round(name: str, spec, args, workdir: Path) -> list[str]:
    found: dict = {}

    def latency(target, wd, a, broker):
        found["tids"] = {str(thread.id): process.name() for process in broker.processes()
                         for thread in process.threads()}
        found["main"] = {str(process.pid) for process in broker.processes()}
        runs = start_perf(workdir, args.profile)
        steal, since = steal_ticks(), time.monotonic()
        try:
            return bench_suite.latency(target, wd, a.duration, broker)
        finally:
            found["window"] = (since, time.monotonic())
            found["steal_ms"] = (steal_ticks() - steal) * 1000 // 100
            stop_perf(runs)

    bench_suite.SCENARIOS["qos1_latency"] = latency
    result = bench_suite.run_scenario("qos1_latency", name, spec, argparse.Namespace(
        duration=args.duration, fanout_rate=0, amqtt_bin=None))
    if "error" in result or "window" not in found:
        return [f"{name}: {result.get('error', 'no run')}"]
    lines = [f"{name}: p50 {result['latency_p50']} / p99 {result['latency_p99']} / p99.9 "
             f"{result['latency_p999']} / max {result['latency_max']} µs ({result['check']}), "
             f"broker CPU {result['broker_cpu_s']} s, steal {found['steal_ms']} ms"]
    if lost := lost_events(workdir / "sched.data"):
        lines.append(f"  perf lost {lost} events: runs that span them look longer than they were")
    runs, delays = runs_and_wakeups(sched_events(workdir / "sched.data"), set(found["tids"]), *found["window"])
    for tid in sorted(found["main"], key=int):
        spans = [length for _, length in runs[tid]]
        long_runs = [(start, length) for start, length in runs[tid] if length > LONG_S]
        lines.append(f"  {found['tids'][tid]} ({tid}): {len(spans)} runs {quantiles(spans)}, "
                     f"{len(long_runs)} over 1 ms ({sum(l for _, l in long_runs) * 1e3:.0f} ms); "
                     f"wake-up to running {quantiles(delays[tid])}")
        if args.profile and long_runs:
            lines += profile_long_runs(workdir / "profile.data", tid, long_runs)
    others = [tid for tid in found["tids"] if tid not in found["main"] and runs[tid]]
    for tid in others:
        lines.append(f"  thread {tid} of {found['tids'][tid]}: {len(runs[tid])} runs, "
                     f"{sum(l for _, l in runs[tid]) * 1e3:.1f} ms")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="actormq-w1,actormq-w2,mosquitto")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true",
                        help="sample the cores too and profile the runs over 1 ms")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="actormq settings of one variant; with several, each round runs every "
                             "actormq broker once per variant (e.g. --variant "
                             "worker.sched_slice_us=0 --variant worker.sched_slice_us=300)")
    args = parser.parse_args()
    names = args.brokers.split(",")
    specs = bench_suite.broker_commands(names, None)
    variants = [dict(pair.split("=", 1) for pair in variant.split(",")) for variant in args.variant]
    scenario_settings = dict(bench_suite.SETTINGS["qos1_latency"])
    for round_no in range(args.rounds):
        for name in names:
            spec = specs[name]
            for variant in (variants if variants and getattr(spec, "takes_settings", False) else [{}]):
                bench_suite.SETTINGS["qos1_latency"] = {**scenario_settings, **variant}
                label = name + "".join(f" {key}={value}" for key, value in variant.items())
                with tempfile.TemporaryDirectory(prefix="latency-sched-") as tmp:
                    print(f"[round {round_no + 1}] {label} " + "\n".join(one_round(name, spec, args,
                                                                                   Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
