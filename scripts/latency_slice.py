#!/usr/bin/env python3
"""What a short fair-scheduler slice (`worker.sched_slice_us`) does to a wake-up
on this machine, apart from the broker: a pinger process sends a byte over a
socket pair every `--interval` µs to an echoing process and times the round
trip, while `--hogs` processes spin on the cores with the kernel's default
slice. The echoing process switches its slice between the values of
`--slices` every `--window` seconds (interleaved, so other work on the machine
falls on every value alike) and the round trips are summed up per value.

    python scripts/latency_slice.py --slices 0,300,100 --hogs 2 --duration 30

Run it without `chrt` (a real-time thread has no such slice).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from actormq.sched_slice import set_slice  # noqa: E402


def hog(until: float) -> None:
    count = 0
    while time.monotonic() < until:
        for _ in range(10000):
            count += 1


def echo(sock: socket.socket, other_end: socket.socket) -> None:
    other_end.close()
    while True:
        data = sock.recv(16)
        if not data:
            return
        if data[0] != 0:                        # a new slice, in µs, before the ping
            reason = set_slice(int.from_bytes(data[1:5], "big"))
            if reason is not None:
                raise SystemExit(reason)
        sock.send(b"\x00")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", default="0,300")
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=0.5)
    parser.add_argument("--interval", type=float, default=500.0, help="µs between two pings")
    args = parser.parse_args()
    slices = [int(value) for value in args.slices.split(",")]
    until = time.monotonic() + args.duration
    context = multiprocessing.get_context("fork")
    hogs = [context.Process(target=hog, args=(until + 1,)) for _ in range(args.hogs)]
    ours, theirs = socket.socketpair()
    echoer = context.Process(target=echo, args=(theirs, ours))
    for process in (*hogs, echoer):
        process.start()
    theirs.close()
    rtts: dict[int, list[float]] = {value: [] for value in slices}
    window = 0
    while time.monotonic() < until:
        current = slices[window % len(slices)]
        window_end = time.monotonic() + args.window
        ours.send(b"\x01" + current.to_bytes(4, "big"))
        ours.recv(16)
        while (now := time.monotonic()) < window_end:
            time.sleep(args.interval / 1e6)
            sent = time.monotonic()
            ours.send(b"\x00")
            ours.recv(16)
            rtts[current].append((time.monotonic() - sent) * 1e6)
        window += 1
    ours.close()
    for process in (*hogs, echoer):
        process.join()
    for value, values in rtts.items():
        print(f"slice {value or 'default'} µs: {len(values)} round trips, p50 "
              f"{percentile(values, 0.5):.0f} / p90 {percentile(values, 0.9):.0f} / p99 "
              f"{percentile(values, 0.99):.0f} / p99.9 {percentile(values, 0.999):.0f} / max "
              f"{max(values):.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
