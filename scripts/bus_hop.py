#!/usr/bin/env python3
"""What one hop between two worker processes costs: two processes, each on a
uvloop event loop, pass a timestamp back and forth, over ZeroMQ PUSH/PULL on
`ipc` (as the bus between workers does, a reader on ZMQ_FD) or over a Unix
socket pair, and print the round-trip percentiles.

    python scripts/bus_hop.py --transport zmq --rounds 2000
    python scripts/bus_hop.py --transport socket --rounds 2000

A ZeroMQ hop wakes the I/O thread of the sending process and that of the
receiving one besides the receiver's event loop; a socket hop wakes only the
receiver.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import tempfile
import time

PAUSE = 0.0005      # s between a round trip and the next (2,000 per second at most)


class Endpoint:
    """One side: answers every timestamp (echo), or measures and sends the next (origin)."""

    def __init__(self, loop, send, origin: bool, rounds: int, done) -> None:
        self.loop = loop
        self.send = send
        self.origin = origin
        self.rounds = rounds
        self.done = done
        self.samples: list[int] = []

    def start(self) -> None:
        self.loop.call_later(0.3, self._ping)

    def _ping(self) -> None:
        self.send(str(time.monotonic_ns()).encode())

    def on_message(self, message: bytes) -> None:
        if not self.origin:
            self.send(message)
            return
        self.samples.append(time.monotonic_ns() - int(message))
        if len(self.samples) >= self.rounds:
            self.done.set_result(self.samples)
        else:
            self.loop.call_later(PAUSE, self._ping)


def zmq_side(run_dir: str, me: int, rounds: int, results) -> None:
    import uvloop
    import zmq

    loop = uvloop.new_event_loop()
    context = zmq.Context()
    inbox = context.socket(zmq.PULL)
    inbox.bind(f"ipc://{run_dir}/side-{me}")
    outbox = context.socket(zmq.PUSH)
    outbox.connect(f"ipc://{run_dir}/side-{1 - me}")
    side = Endpoint(loop, outbox.send, me == 0, rounds, loop.create_future())

    def on_readable() -> None:
        while True:
            try:
                side.on_message(inbox.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
    loop.add_reader(inbox.getsockopt(zmq.FD), on_readable)
    _run(loop, side, results)


def socket_side(sock: socket.socket, me: int, rounds: int, results) -> None:
    import uvloop

    loop = uvloop.new_event_loop()
    sock.setblocking(False)
    side = Endpoint(loop, lambda data: sock.send(data + b";"), me == 0, rounds, loop.create_future())

    def on_readable() -> None:
        for message in sock.recv(65536).split(b";")[:-1]:
            side.on_message(message)
    loop.add_reader(sock.fileno(), on_readable)
    _run(loop, side, results)


def _run(loop, side: Endpoint, results) -> None:
    if side.origin:
        side.start()
        results.put(loop.run_until_complete(side.done))
    else:
        loop.run_forever()


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", choices=("zmq", "socket"), default="zmq")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    if args.transport == "zmq":
        run_dir = tempfile.mkdtemp(prefix="bus-hop-")
        sides = [context.Process(target=zmq_side, args=(run_dir, me, args.rounds, results))
                 for me in (1, 0)]
    else:
        run_dir = None
        pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sides = [context.Process(target=socket_side, args=(pair[me], me, args.rounds, results))
                 for me in (1, 0)]
    for side in sides:
        side.start()
    samples = results.get()
    for side in sides:
        side.kill()
        side.join()
    if run_dir is not None:
        for name in os.listdir(run_dir):
            os.unlink(os.path.join(run_dir, name))
        os.rmdir(run_dir)
    print(f"{args.transport}: round trip µs p50 {percentile(samples, 50):.0f}  "
          f"p99 {percentile(samples, 99):.0f}  p99.9 {percentile(samples, 99.9):.0f}  "
          f"max {max(samples) / 1000:.0f}  ({len(samples):,} round trips)")


if __name__ == "__main__":
    main()
