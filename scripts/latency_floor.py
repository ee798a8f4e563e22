#!/usr/bin/env python3
"""The floor under `qos1_latency` on this machine: `actormq bench latency`
against a relay that does nothing a broker does beyond passing bytes on, in
one process (like `-w 1`) and in two processes joined by a Unix socket (like
`-w 2`, the publisher on one, the subscriber on the other).

    chrt -f 20 python scripts/latency_floor.py --rounds 3 --duration 5

The relay speaks just enough MQTT for the probe: CONNACK, SUBACK, PINGRESP,
a PUBACK for each QoS 1 PUBLISH, and every PUBLISH goes as it came to the
subscriber (same bytes, same packet id). Each process is one thread blocked
in `select`: no event loop, no routing, no encoding. What the probe measures
through it is the probe's own share plus the wake-ups of the processes on
the way: the least any broker of that shape can take here.

`--pauses S` then spins a process on each core for S seconds, reading the
clock in a loop, and reports the longest times it went without running
(more than 100 µs between two reads): what the machine itself takes from a
process that never blocks (the hypervisor taking the virtual CPU away,
interrupts, kernel threads). No broker's maximum can be below these.
"""

from __future__ import annotations

import argparse
import multiprocessing
import select
import socket
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from actormq.bench.client import AckHeaders, Endpoint, scan  # noqa: E402
from actormq.bench.probe import Probe, run_latency  # noqa: E402

CONNECT, SUBSCRIBE, PINGREQ, DISCONNECT = 1, 8, 12, 14
PAUSE_NS = 100_000          # a gap between two clock reads longer than this is a pause
ACKS = AckHeaders.for_version(4)


def relay(listener: socket.socket, inbound: socket.socket | None,
          outbound: socket.socket | None) -> None:
    """Serve MQTT clients on `listener`: PUBLISH bytes go to `outbound` (the
    other process) or, without one, to this process's subscribers; bytes read
    from `inbound` go to this process's subscribers."""
    clients: dict[socket.socket, bytes] = {}
    subscribers: list[socket.socket] = []
    watched = [listener] + ([inbound] if inbound is not None else [])
    while True:
        ready, _, _ = select.select(watched + list(clients), [], [])
        for sock in ready:
            if sock is listener:
                conn, _ = listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                clients[conn] = b""
                continue
            data = sock.recv(65536)
            if sock is inbound:
                for subscriber in subscribers:
                    subscriber.sendall(data)
                continue
            if not data:
                clients.pop(sock)
                if sock in subscribers:
                    subscribers.remove(sock)
                sock.close()
                continue
            buf = clients[sock] + data
            offsets, replies, controls = [], bytearray(), []
            consumed, _ = scan(buf, False, ACKS, offsets, replies, controls)
            clients[sock] = buf[consumed:]
            if offsets:
                packets = buf[:consumed]
                if outbound is not None:
                    outbound.sendall(packets)
                else:
                    for subscriber in subscribers:
                        subscriber.sendall(packets)
            for first, body in controls:
                kind = first >> 4
                if kind == CONNECT:
                    replies += b"\x20\x02\x00\x00"
                elif kind == SUBSCRIBE:
                    replies += b"\x90\x03" + body[:2] + b"\x01"
                    subscribers.append(sock)
                elif kind == PINGREQ:
                    replies += b"\xd0\x00"
            if replies:
                sock.sendall(replies)


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def start_relay(processes: int) -> tuple[list, int, int]:
    """(processes, publisher's port, subscriber's port) of a relay."""
    context = multiprocessing.get_context("fork")
    front = _listener()
    if processes == 1:
        procs = [context.Process(target=relay, args=(front, None, None), daemon=True)]
        back = front
    else:
        back = _listener()
        there, here = socket.socketpair()
        procs = [context.Process(target=relay, args=(front, None, there), daemon=True),
                 context.Process(target=relay, args=(back, here, None), daemon=True)]
    for proc in procs:
        proc.start()
    return procs, front.getsockname()[1], back.getsockname()[1]


def spin(cpu: int, seconds: float, results) -> None:
    """Read the clock on `cpu` for `seconds`; put (cpu, the pauses in ns)."""
    os.sched_setaffinity(0, {cpu})
    clock = time.monotonic_ns
    last = start = clock()
    end = start + int(seconds * 1e9)
    pauses = []
    while last < end:
        now = clock()
        if now - last > PAUSE_NS:
            pauses.append(now - last)
        last = now
    results.put((cpu, pauses))


def steal_ms() -> dict[int, float]:
    """Per core, the time the hypervisor ran something else (ms, /proc/stat)."""
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        return {int(fields[0][3:]): int(fields[8]) * tick_ms
                for fields in (line.split() for line in stat)
                if fields[0].startswith("cpu") and fields[0][3:].isdigit()}


def measure_pauses(seconds: float) -> None:
    """Print, per core, the pauses a spinning process saw over `seconds`."""
    stolen = steal_ms()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    cpus = sorted(os.sched_getaffinity(0))
    procs = [context.Process(target=spin, args=(cpu, seconds, results)) for cpu in cpus]
    for proc in procs:
        proc.start()
    found = dict(results.get() for _ in procs)
    for proc in procs:
        proc.join()
    stolen = {cpu: ms - stolen.get(cpu, 0.0) for cpu, ms in steal_ms().items()}
    for cpu in cpus:
        pauses = sorted(found[cpu])
        over = {ms: sum(p > ms * 1_000_000 for p in pauses) for ms in (0.4, 1, 2)}
        longest = ", ".join(f"{p / 1000:,.0f}" for p in pauses[-5:][::-1]) or "none"
        print(f"core {cpu}, {seconds:g} s spinning: {len(pauses)} pauses over 0.1 ms, "
              + ", ".join(f"{n} over {ms:g} ms" for ms, n in over.items())
              + f"; longest {longest} µs; steal {stolen.get(cpu, 0.0):,.0f} ms", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--pauses", type=float, default=0.0, metavar="S",
                        help="then spin on each core for S s and report the pauses it saw")
    args = parser.parse_args()
    for round_ in range(args.rounds):
        for processes in (1, 2):
            procs, pub_port, sub_port = start_relay(processes)
            summary = run_latency(Endpoint(port=pub_port), Probe(
                rate=args.rate, duration=args.duration, grace=2.0,
                sub_port=sub_port if processes > 1 else None))
            for proc in procs:
                proc.kill()
                proc.join()
            lat = summary.latency_us or {}
            check = "ok" if summary.received == summary.sent and not summary.missing \
                and not summary.duplicates else f"received {summary.received} of {summary.sent}"
            print(f"round {round_ + 1}, relay in {processes} process{'es' if processes > 1 else ''}: "
                  + "  ".join(f"{k} {v:,.0f}" for k, v in lat.items() if k != "mean")
                  + f" µs, {check}", flush=True)
    if args.pauses:
        measure_pauses(args.pauses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
