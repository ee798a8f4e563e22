#!/usr/bin/env python3
"""When the slow messages of `qos1_latency` come, and what ran meanwhile.

Runs the suite's scenario (2,000 msg/s QoS 1; with several workers the
subscriber on worker 0 and the publisher on worker 1) with the probe's
`--series` (every message's send and receive time) under `perf record` of
the scheduler's events, and reports for each broker:

    episodes    the messages over `--slow` µs grouped into episodes (slow
                messages less than 5 ms apart), their count and spacing, and
                how the episodes fall modulo the periods of the broker's
                timers and the kernel's tick (a periodic cause piles them
                into a few bins, a random one spreads them as random times do)
    on a core   for the slow messages and for the others, which threads
                (broker processes by title, the probe, the rest by command)
                were on a core between the message's send() and its recv(),
                in µs per message; and how long the threads on the way (the
                broker's, the probe's) were ready to run but waited for a
                core, and who held the cores meanwhile
    wake-ups    voluntary context switches per second of every thread of
                the broker, idle (before the probe) and with the traffic

    chrt -f 20 python scripts/latency_series.py --brokers actormq-w2 --rounds 3

Needs `perf` and root; other work on the machine shows up as it is.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import csv
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_suite  # noqa: E402  (the suite's brokers and scenario)
import latency_sched  # noqa: E402  (perf's scheduler events)

EPISODE_GAP_NS = 5_000_000
PERIODS_S = (0.004, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
PHASE_BINS = 10
IDLE_S = 2.0
SWITCH = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) .*==> next_comm=(.*?) next_pid=(\d+)")


def thread_names(broker) -> dict[int, str]:
    """tid -> 'title/thread' of every thread of the broker's processes."""
    names = {}
    for process in broker.processes():
        try:
            title = " ".join(process.cmdline())[:24] or process.name()
            for thread in process.threads():
                comm = Path(f"/proc/{process.pid}/task/{thread.id}/comm").read_text().strip()
                names[thread.id] = f"{title} [{comm}]" if thread.id != process.pid else title
        except (psutil.Error, OSError):
            continue
    return names


def probe_processes(found: dict) -> None:
    """Note the pids of the probe's processes (this script's `bench latency`
    and its two forks) once they run: they are on the message's way too. The
    thread leaves the real-time policy the script may run under, so that its
    look at /proc never holds a core the way waits for."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(found.get("probe", ())) < 3:
        time.sleep(0.2)
        for pid in descendants(os.getpid()):
            try:
                if b"latency" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                    found["probe"] = {pid, *descendants(pid)}
            except OSError:
                continue


def descendants(pid: int) -> list[int]:
    """The processes started by `pid` and by those, from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def voluntary_switches(tids) -> dict[int, int]:
    counts = {}
    for tid in tids:
        try:
            status = Path(f"/proc/{tid}/status").read_text()
        except OSError:
            continue
        counts[tid] = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
    return counts


def read_series(path: Path) -> list[tuple[int, int, int]]:
    with open(path) as rows:
        return [(int(row["seq"]), int(row["send_ns"]), int(row["recv_ns"]))
                for row in csv.DictReader(rows)]


def episodes(slow: list[tuple[int, int, int]]) -> list[list[tuple[int, int, int]]]:
    """The slow messages grouped: a message less than EPISODE_GAP_NS after the
    previous one's send joins its episode."""
    groups: list = []
    for message in slow:
        if groups and message[1] - groups[-1][-1][1] < EPISODE_GAP_NS:
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def largest_bin(phases: list[float]) -> float:
    """The share of the fullest of PHASE_BINS bins of phases in [0, 1)."""
    bins = collections.Counter(int(phase * PHASE_BINS) for phase in phases)
    return max(bins.values()) / len(phases)


def phase_spread(starts_ns: list[int], period_s: float) -> float:
    """How the episode starts fall into PHASE_BINS bins of the period: the
    largest bin's share (see `uniform_spread` for no relation to the period)."""
    period = int(period_s * 1e9)
    return largest_bin([(start % period) / period for start in starts_ns])


def uniform_spread(count: int, trials: int = 200) -> float:
    """The largest bin's share that `count` starts at random times give, on average."""
    draw = random.Random(count)
    return sum(largest_bin([draw.random() for _ in range(count)]) for _ in range(trials)) / trials


def cpu_intervals(events) -> list[tuple[float, float, str]]:
    """(start, end, tid) of every run of a thread on a core, from sched_switch."""
    runs, on_core = [], {}
    for at, event, rest, cpu in events:
        if event != "sched:sched_switch":
            continue
        match = SWITCH.search(rest)
        if not match:
            continue
        prev_comm, prev, next_comm, nxt = match.groups()
        if cpu in on_core:
            begun, tid, comm = on_core[cpu]
            runs.append((begun, at, tid, comm))
        on_core[cpu] = (at, nxt, next_comm)
    runs.sort()
    return runs


def wait_intervals(events, path: set[str]) -> list[tuple[float, float, str]]:
    """(since, until, tid) of every time a thread of `path` was ready to run (woken,
    or preempted) and not on a core: what the message's way waited for."""
    waits, ready = [], {}
    for at, event, rest, _ in events:
        if event == "sched:sched_wakeup":
            target = re.search(r" pid=(\d+)", rest).group(1)
            if target in path:
                ready.setdefault(target, at)
        elif event == "sched:sched_switch":
            match = SWITCH.search(rest)
            if not match:
                continue
            _, prev, _, nxt = match.groups()
            if prev in path and "prev_state=R" in rest:
                ready.setdefault(prev, at)
            if nxt in ready:
                waits.append((ready.pop(nxt), at, nxt))
    waits.sort()
    return waits


def on_core_during(runs, starts: list[float], windows, label) -> collections.Counter:
    """µs on a core per label, summed over the windows (send, recv) in seconds."""
    total: collections.Counter = collections.Counter()
    longest = max((end - begun for begun, end, _, _ in runs), default=0)
    for since, until in windows:
        at = bisect.bisect_left(starts, since - longest)
        while at < len(runs) and runs[at][0] < until:
            begun, end, tid, comm = runs[at]
            overlap = min(end, until) - max(begun, since)
            if overlap > 0 and tid != "0":
                total[label(tid, comm)] += overlap * 1e6
            at += 1
    return total


def sched_with_cpu(data: Path):
    """(time, event, fields, cpu) of each scheduler event perf recorded."""
    text = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "comm,pid,tid,cpu,time,event,trace"],
        capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        match = latency_sched.EVENT.match(line)
        if match:
            yield float(match.group(5)), match.group(6), match.group(7), match.group(4)


def one_round(name: str, spec, args, workdir: Path) -> list[str]:
    found: dict = {}
    series_file = workdir / "series.csv"

    def latency(target, wd, a, broker):
        found["names"] = names = thread_names(broker)
        before_idle = voluntary_switches(names)
        time.sleep(IDLE_S)
        found["idle"] = (before_idle, voluntary_switches(names), IDLE_S)
        runs = latency_sched.start_perf(workdir, False)
        since = time.monotonic()
        before = voluntary_switches(names)
        threading.Thread(target=probe_processes, args=(found,), daemon=True).start()
        try:
            return bench_suite.latency(target, wd, a.duration, broker, series=series_file)
        finally:
            found["busy"] = (before, voluntary_switches(names), time.monotonic() - since)
            latency_sched.stop_perf(runs)

    bench_suite.SCENARIOS["qos1_latency"] = latency
    result = bench_suite.run_scenario("qos1_latency", name, spec, argparse.Namespace(
        duration=args.duration, fanout_rate=0, amqtt_bin=None))
    if "error" in result or not series_file.exists():
        return [f"{name}: {result.get('error', 'no series')}"]
    lines = [f"{name}: p50 {result['latency_p50']} / p90 {result['latency_p90']} / p99 "
             f"{result['latency_p99']} / p99.9 {result['latency_p999']} / max "
             f"{result['latency_max']} µs ({result['check']}), broker CPU {result['broker_cpu_s']} s"]
    lines += slow_report(read_series(series_file), args.slow * 1000)
    lines += core_report(workdir / "sched.data", read_series(series_file), args.slow * 1000,
                         found["names"], found.get("probe", set()))
    lines += wakeup_report(found)
    return lines


def slow_report(series, slow_ns: int) -> list[str]:
    slow = [message for message in series if message[2] - message[1] > slow_ns]
    groups = episodes(slow)
    if not groups:
        return [f"  no message over {slow_ns // 1000} µs"]
    first = series[0][1]
    starts = [group[0][1] for group in groups]
    gaps = sorted((b - a) / 1e6 for a, b in zip(starts, starts[1:]))
    sizes = collections.Counter(len(group) for group in groups)
    lines = [f"  {len(slow)} of {len(series)} messages over {slow_ns // 1000} µs in "
             f"{len(groups)} episodes (messages per episode: "
             + ", ".join(f"{size}×{count}" for size, count in sorted(sizes.items())) + ")"]
    if gaps:
        pick = lambda q: gaps[min(len(gaps) - 1, int(len(gaps) * q))]  # noqa: E731
        lines.append(f"  between episodes: p10 {pick(0.1):.1f} / p50 {pick(0.5):.1f} / p90 "
                     f"{pick(0.9):.1f} ms")
    lines.append(f"  largest phase bin of the episode starts (of {PHASE_BINS}; "
                 f"{uniform_spread(len(starts)):.2f} for random times): "
                 + ", ".join(f"{p * 1000:g} ms {phase_spread(starts, p):.2f}" for p in PERIODS_S))
    lines.append("  episodes (ms from the first send: messages, worst µs): " + ", ".join(
        f"{(group[0][1] - first) / 1e6:.0f}: {len(group)}, "
        f"{max(m[2] - m[1] for m in group) // 1000}" for group in groups[:40]))
    return lines


def core_report(data: Path, series, slow_ns: int, names: dict[int, str],
                probe: set[int]) -> list[str]:
    events = list(sched_with_cpu(data))
    runs = cpu_intervals(events)
    starts = [run[0] for run in runs]
    waits = wait_intervals(events, {str(tid) for tid in (*names, *probe)})
    wait_starts = [wait[0] for wait in waits]

    def label(tid: str, comm: str) -> str:
        return names.get(int(tid)) or ("probe" if int(tid) in probe else f"other: {comm}")

    slow = [(m[1] / 1e9, m[2] / 1e9) for m in series if m[2] - m[1] > slow_ns]
    rest = [(m[1] / 1e9, m[2] / 1e9) for m in series if m[2] - m[1] <= slow_ns][::10]
    lines = []
    for title, windows in (("slow", slow), ("others (1 in 10)", rest)):
        if not windows:
            continue
        total = on_core_during(runs, starts, windows, label)
        lines.append(f"  on a core during the {len(windows)} {title}, µs per message: " + ", ".join(
            f"{who.strip()} {us / len(windows):.0f}" for who, us in total.most_common(8)))
        waited = [part for window in windows for part in clip(waits, wait_starts, window)]
        held = on_core_during(runs, starts, [(since, until) for since, until, _ in waited], label)
        by_thread: collections.Counter = collections.Counter()
        for since, until, tid in waited:
            by_thread[label(tid, "")] += (until - since) * 1e6
        lines.append("    waiting for a core, µs per message: " + ", ".join(
            f"{who.strip()} {us / len(windows):.0f}" for who, us in by_thread.most_common())
            + "; meanwhile on the cores: " + ", ".join(
                f"{who.strip()} {us / len(windows):.0f}" for who, us in held.most_common(6)))
    return lines


def clip(waits, wait_starts: list[float], window) -> list[tuple[float, float, str]]:
    """The parts of the wait intervals inside `window` (waits are short: look 10 ms back)."""
    since, until = window
    at = bisect.bisect_left(wait_starts, since - 0.01)
    parts = []
    while at < len(waits) and waits[at][0] < until:
        begun, end, tid = waits[at]
        if min(end, until) > max(begun, since):
            parts.append((max(begun, since), min(end, until), tid))
        at += 1
    return parts


def wakeup_report(found: dict) -> list[str]:
    names = found["names"]
    lines = ["  voluntary context switches per second (idle / with traffic):"]
    idle_before, idle_after, idle_s = found["idle"]
    busy_before, busy_after, busy_s = found["busy"]
    for tid, who in sorted(names.items()):
        if tid in idle_after and tid in busy_after:
            idle = (idle_after[tid] - idle_before[tid]) / idle_s
            busy = (busy_after[tid] - busy_before[tid]) / busy_s
            lines.append(f"    {who} ({tid}): {idle:.1f} / {busy:.1f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="actormq-w2")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--slow", type=int, default=400, help="µs over which a message is slow")
    parser.add_argument("--keep", type=Path, default=None,
                        help="a directory to keep each round's series and perf data in")
    args = parser.parse_args()
    names = args.brokers.split(",")
    specs = bench_suite.broker_commands(names, None)
    for round_no in range(args.rounds):
        for name in names:
            with tempfile.TemporaryDirectory(prefix="latency-series-") as tmp:
                print(f"[round {round_no + 1}] " + "\n".join(one_round(name, specs[name], args,
                                                                         Path(tmp))), flush=True)
                if args.keep:
                    kept = args.keep / f"{name}-{round_no + 1}"
                    kept.mkdir(parents=True, exist_ok=True)
                    for produced in ("series.csv", "sched.data"):
                        shutil.move(Path(tmp) / produced, kept / produced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
