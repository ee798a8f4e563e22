#!/usr/bin/env python3
"""Where the QoS 1 latency of `bench_suite.py`'s `qos1_latency` scenario goes:
the same run (2,000 msg/s, subscriber on worker 0, publisher on worker 1 when
there are several), with a timestamp at each stage of every message inside
the broker, and every garbage collection of every process.

    chrt -f 20 python scripts/latency_stages.py -w 2

The probe's publisher (`actormq bench latency`) writes its clock
(CLOCK_MONOTONIC, the same in every process) into each payload; the broker's
processes note when each message passes a stage, and the report gives the
percentiles of each step:

    sent -> woke       publisher's write until the broker's loop hands the read to the connection
    woke -> read       decoding it until the PUBLISH is routed
    read -> bus_out    (-w 2+) routing until the PUB frame goes to the other worker
    bus_out -> bus_woke  (-w 2+) the hop: until the receiving loop reads the bus
    bus_woke -> bus_in (-w 2+) reading and decoding the frame until its messages are routed
    bus_in -> deliver  (-w 2+) routing there until the PUBLISH is encoded for the subscriber
    read -> deliver    the whole way to the subscriber's connection
    deliver -> write   until the socket write to the subscriber
    read -> write      the whole way through the broker
    sent -> write      everything but the subscriber's own read
    sent -> last_write the same for the last message of the publisher's write
                       (the probe writes one message at a time: the same as above)
    write -> received  the subscriber's wake-up: until its recv() returned
    last_write -> received  the same from the last write that carried the message
    sent -> received   the whole way, what the probe reports

and the collections that ran while messages flowed (generation: count,
longest). The stages are noted by wrappers that a `sitecustomize` module in a
temporary directory puts around a few methods in the broker's processes and
the probe loads too; the broker's code is not changed, and a broker
started without this script runs without them.
"""

from __future__ import annotations

import argparse
import array
import collections
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_suite  # noqa: E402  (the suite's brokers and scenario)

STAGE_NAMES = ("woke", "read", "bus_out", "bus_woke", "bus_in", "deliver", "write", "received")
MARKS_KEPT = 2048   # marks a process keeps before it appends them to its file

SITECUSTOMIZE = r'''
import array, gc, os, struct, sys, time

OUT = os.environ.get("LATENCY_STAGES_OUT")
if OUT:
    STAGES = STAGE_NAMES
    _code = {name: code for code, name in enumerate(STAGES)}
    _marks = array.array("q")       # (stage code, sent, at) after one another
    _gc = []
    _stamp = struct.Struct(">Q")
    _started = [0]

    def _save(rows, kind):
        with open(os.path.join(OUT, f"{kind}.{os.getpid()}"), "a") as out:
            out.write("".join(" ".join(map(str, row)) + "\n" for row in rows))
        rows.clear()

    def _save_marks():
        # One binary write of a few KiB every MARKS_KEPT marks: the text of 512 marks
        # took the worker 1.3-2 ms every 64 ms, which was most of the tail it measured.
        # (The last marks of a worker, which exits without atexit, are lost.)
        with open(os.path.join(OUT, f"stages.{os.getpid()}"), "ab") as out:
            out.write(_marks.tobytes())
        del _marks[:]

    def mark(stage, payload, at=None):
        if len(payload) >= 16:
            _marks.extend((_code[stage], _stamp.unpack_from(payload, 8)[0], at or time.monotonic_ns()))
            if len(_marks) >= 3 * MARKS_KEPT:
                _save_marks()

    _woke = {}      # wake-up stage -> when the loop callback that leads to the next mark began

    def _wrap_woke(cls, name, stage):
        original = getattr(cls, name)
        def wrapper(self, *args):
            _woke[stage] = time.monotonic_ns()
            return original(self, *args)
        setattr(cls, name, wrapper)

    def _on_gc(phase, info):
        if phase == "start":
            _started[0] = time.monotonic_ns()
        else:
            _gc.append((info["generation"], _started[0], time.monotonic_ns() - _started[0]))
            _save(_gc, "gc")

    gc.callbacks.append(_on_gc)
    with open(os.path.join(OUT, f"argv.{os.getpid()}"), "w") as out:
        out.write(" ".join(sys.argv))

    def _wrap(cls, name, stage, payload_of, woke=None):
        original = getattr(cls, name)
        def wrapper(self, *args):
            payloads = payload_of(self, *args)
            if payloads is not None:
                at = time.monotonic_ns()
                for payload in ((payloads,) if type(payloads) is not list else payloads):
                    if woke in _woke:
                        mark(woke, payload, _woke[woke])
                    mark(stage, payload, at)
            return original(self, *args)
        setattr(cls, name, wrapper)

    _size = int(os.environ.get("LATENCY_STAGES_SIZE", "64"))

    def _published(self):
        # every PUBLISH of the write: the ones a late write carries at once are the tail
        out = self._out
        if not out or self.closed:
            return None
        return [packet[-_size:] for packet in out if packet[0] >> 4 == 3] or None

    try:
        from actormq.bench.stats import SequenceTracker
    except ImportError:
        pass
    else:
        _observe, _counts = SequenceTracker.observe, SequenceTracker.counts

        def observe(self, buf, offsets, now_ns):
            for offset in offsets:
                mark("received", buf[offset:offset + 16], now_ns)
            return _observe(self, buf, offsets, now_ns)

        def counts(self, *args):
            _save_marks()       # the probe's subscriber is done
            return _counts(self, *args)

        SequenceTracker.observe, SequenceTracker.counts = observe, counts

    try:
        from actormq.actors.connection import Connection
        from actormq.actors.forwarding import Forwarding
        from actormq.transport.bus import Bus
    except ImportError:
        pass
    else:
        _wrap_woke(Connection, "data_received", "woke")
        _wrap_woke(Bus, "_take_turn", "bus_woke")
        _wrap(Connection, "_route", "read", lambda self, packet: packet.payload, "woke")
        _wrap(Connection, "send_publish", "deliver", lambda self, message, *rest: message.payload)
        _wrap(Connection, "flush", "write", _published)
        _wrap(Forwarding, "_send_batch", "bus_out", lambda self, peer, items, payloads: payloads[0])
        _wrap(Forwarding, "on_publish", "bus_in", lambda self, batch, payloads: payloads[0],
              "bus_woke")
'''

STEPS = [("sent", "woke"), ("woke", "read"), ("read", "bus_out"), ("bus_out", "bus_woke"),
         ("bus_woke", "bus_in"), ("bus_in", "deliver"), ("read", "deliver"), ("deliver", "write"),
         ("read", "write"), ("sent", "write"), ("sent", "last_write"), ("write", "received"),
         ("last_write", "received"), ("sent", "received")]


def percentile(ordered: list, q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def read_rows(out: Path, kind: str) -> dict[int, list[list[int | str]]]:
    if kind == "stages":
        return read_marks(out)
    rows = {}
    for path in out.glob(f"{kind}.*"):
        pid = int(path.suffix[1:])
        rows[pid] = [[int(x) if x.isdigit() else x for x in line.split()]
                     for line in path.read_text().splitlines()]
    return rows


def read_marks(out: Path) -> dict[int, list[tuple[str, int, int]]]:
    rows = {}
    for path in out.glob("stages.*"):
        marks = array.array("q", path.read_bytes())
        rows[int(path.suffix[1:])] = [(STAGE_NAMES[marks[i]], marks[i + 1], marks[i + 2])
                                      for i in range(0, len(marks) - 2, 3)]
    return rows


def phase_report(messages: dict, phases: int) -> str:
    """Medians of a few steps by message number modulo `phases`: a delay that
    comes every n-th message (the n of a pacing counter) stands out."""
    order = sorted(messages)
    lines = [f"medians by message number modulo {phases} (µs):"]
    for first, last in (("sent", "write"), ("write", "received"), ("sent", "received")):
        by_phase = collections.defaultdict(list)
        for number, sent in enumerate(order):
            stages = messages[sent]
            if last in stages and (first == "sent" or first in stages):
                by_phase[number % phases].append(stages[last] - (sent if first == "sent" else stages[first]))
        lines.append(f"  {first:>8} -> {last:<10}" + " ".join(
            f" {phase}:{statistics.median(spans) / 1000:.0f}" for phase, spans in sorted(by_phase.items())))
    return "\n".join(lines)


def report(out: Path, result: dict, phases: int = 0) -> str:
    messages = collections.defaultdict(dict)      # sent stamp -> stage -> first time seen
    for rows in read_rows(out, "stages").values():
        for stage, sent, at in rows:
            stages = messages[sent]
            stages.setdefault(stage, at)
            stages[f"last_{stage}"] = at
    lines = [f"bench: p50 {result.get('latency_p50')} µs, p99 {result.get('latency_p99')}, "
             f"p99.9 {result.get('latency_p999')}, max {result.get('latency_max')} "
             f"({result.get('check')})",
             f"{len(messages):,} bursts timed (a burst: the messages of one write of the publisher)"]
    for first, last in STEPS:
        spans = sorted((stages[last] - (sent if first == "sent" else stages[first])) / 1000
                       for sent, stages in messages.items()
                       if last in stages and (first == "sent" or first in stages))
        if spans:
            lines.append(f"  {first:>8} -> {last:<12}  p50 {percentile(spans, 50):7.0f}  "
                         f"p90 {percentile(spans, 90):7.0f}  p99 {percentile(spans, 99):7.0f}  "
                         f"max {spans[-1]:7.0f} µs")
    if messages and phases:
        lines.append(phase_report(messages, phases))
    if messages:
        lines.append(gc_report(out, min(messages), max(messages)))
    return "\n".join(lines)


def gc_report(out: Path, first: int, last: int) -> str:
    lines = ["collections while messages flowed (generation: count, longest µs):"]
    for pid, rows in sorted(read_rows(out, "gc").items()):
        argv = (out / f"argv.{pid}").read_text() if (out / f"argv.{pid}").exists() else "?"
        who = ("broker worker" if "multiprocessing" in argv else "broker node" if " run " in argv
               else "bench " + argv.split(" bench ")[1].split()[0] if " bench " in argv else None)
        if who is None:
            continue
        during = collections.defaultdict(list)
        for generation, started, took in rows:
            if first <= started <= last:
                during[generation].append(took // 1000)
        summary = ", ".join(f"gen {g}: {len(t)}, {max(t)}" for g, t in sorted(during.items()))
        lines.append(f"  {who} (pid {pid}): {summary or 'none'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-w", "--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the raw timestamps (path printed)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a broker setting for the run (e.g. queue.storage=ram)")
    parser.add_argument("--phases", type=int, default=0, metavar="N",
                        help="also the medians by message number modulo N (a periodic delay)")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="latency-stages-"))
    site = out / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.replace("STAGE_NAMES", repr(STAGE_NAMES))
                                          .replace("MARKS_KEPT", str(MARKS_KEPT)))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    os.environ["LATENCY_STAGES_OUT"] = str(out)
    os.environ["LATENCY_STAGES_SIZE"] = "64"    # the scenario's payload size
    name = f"actormq-w{args.workers}"
    spec = bench_suite.broker_commands([name], None)[name]
    bench_suite.SETTINGS["qos1_latency"] = {**bench_suite.SETTINGS["qos1_latency"],
                                            **dict(item.split("=", 1) for item in args.set)}
    result = bench_suite.run_scenario("qos1_latency", name, spec, argparse.Namespace(
        duration=args.duration, fanout_rate=0, amqtt_bin=None))
    if "error" in result:
        print(f"{name}: {result['error']}", file=sys.stderr)
        return 1
    print(f"{name}, subscriber and publisher on "
          f"{'different workers' if result.get('across_workers') else 'the same worker'}")
    print(report(out, result, args.phases))
    if args.keep:
        print(f"raw timestamps in {out}")
    else:
        for path in sorted(out.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        out.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
