"""The notification sender: a process of its own that POSTs a worker's webhook notifications.

HTTP costs far more CPU than routing a message, so a worker does not send
notifications itself: `SenderProcess` (in the worker) starts
``python -m actormq.webhooks.sender`` and pushes each notification to it over
a ZeroMQ PAIR socket (one frame: url and headers as JSON, key, body) without ever
waiting. Flow control is by credit: the worker may hand over `queue_size`
notifications the sender has not finished; the sender returns credit for
what it sent every 50 ms; without credit an event is dropped and counted
before its body is built, so a sender that cannot keep up costs the worker
next to nothing.
The sender sends them with the keep-alive pool and the per-client lanes of
`actormq.webhooks.http.Notifier` and reports its counters back once a
second. It runs at a lower priority (nice 10): the broker's clients come
first, and what the sender cannot keep up with is dropped and counted. It
exits when its worker is gone (parent changed) or says stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Callable, Mapping

import orjson
import zmq
import zmq.asyncio

from actormq.webhooks.http import HttpPool, Notifier, client_ssl_context

log = logging.getLogger("actormq.webhooks")

STOP = b"stop"
_FRAME_HEAD = struct.Struct("!IH")     # one frame: sizes, then [url, headers] JSON, key, body
REPORT_INTERVAL = 1.0
CREDIT_INTERVAL = 0.05


class SenderProcess:
    """The worker's side: starts the sender process and hands it notifications."""

    def __init__(self, queue_size: int, max_connections: int, keepalive_s: float,
                 timeout_s: float = 5.0, tls: tuple[str, str, str, bool] = ("", "", "", True)) -> None:
        self._dir = tempfile.mkdtemp(prefix="actormq-webhooks-")
        address = f"ipc://{self._dir}/sender"
        self._context = zmq.Context.instance()
        self._socket = self._context.socket(zmq.PAIR)
        self._socket.setsockopt(zmq.SNDHWM, queue_size)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(address)
        self.counters: Counter[tuple[str, str]] = Counter()   # (endpoint, sent|failed|dropped)
        self._reported: Counter[tuple[str, str]] = Counter()
        self._dropped_here: Counter[tuple[str, str]] = Counter()
        self._targets: dict[tuple[str, int], bytes] = {}     # (url, headers) -> their JSON, made once
        self._credit = queue_size    # notifications the sender can still take (it returns credit)
        self._next_refresh = 0.0
        command = [sys.executable, "-m", "actormq.webhooks.sender", address, str(os.getpid()),
                   str(queue_size), str(max_connections), str(keepalive_s), str(timeout_s),
                   orjson.dumps(list(tls)).decode()]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    async def ready(self, timeout_s: float = 10.0) -> bool:
        """Wait for the sender's first report (it is connected); False if it never came."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if self._socket.poll(0):
                self.refresh()
                return True
            if self._process.poll() is not None:
                break
            await asyncio.sleep(0.02)
        log.error("the webhook notification sender did not start; notifications are sent by the worker")
        return False

    def send(self, url: str, headers: Mapping[str, str], payload: Callable[[], bytes], key: str = "") -> bool:
        """Hand one POST to the sender; False (counted) when it is that far behind.

        Past the credit the sender gave, the event is dropped before its body is even built:
        a sender that cannot keep up costs the worker next to nothing."""
        if self._credit <= 0:
            now = time.monotonic()
            if now >= self._next_refresh:
                self._next_refresh = now + CREDIT_INTERVAL / 5
                self.refresh()
            if self._credit <= 0:
                self._dropped_here[url, "dropped"] += 1
                return False
        self._credit -= 1
        target = self._targets.get((url, id(headers)))
        if target is None:
            target = self._targets[url, id(headers)] = orjson.dumps([url, headers])
        key_bytes = key.encode()
        try:
            self._socket.send(_FRAME_HEAD.pack(len(target), len(key_bytes)) + target + key_bytes + payload(),
                              zmq.NOBLOCK)
        except zmq.Again:
            self._dropped_here[url, "dropped"] += 1
            return False
        return True

    def refresh(self) -> None:
        """Take the sender's reports: credit returned, its counters (sent, failed, its drops)."""
        while True:
            try:
                report = orjson.loads(self._socket.recv(zmq.NOBLOCK))
            except zmq.Again:
                break
            self._credit += report.get("credit", 0)
            if "counters" in report:
                self._reported = Counter({tuple(key.split(" ", 1)): value
                                          for key, value in report["counters"].items()})
        self.counters = self._reported + self._dropped_here

    def pending(self) -> int:
        return 0

    async def drain(self, timeout_s: float = 1.0) -> None:
        """The sender drains what it has when it is told to stop."""

    async def close(self) -> None:
        try:
            self._socket.send(STOP, zmq.NOBLOCK)
        except zmq.Again:
            pass
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._process.wait, 2.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._socket.close()
        try:
            for name in os.listdir(self._dir):
                os.unlink(os.path.join(self._dir, name))
            os.rmdir(self._dir)
        except OSError:
            pass


async def _serve(address: str, parent: int, queue_size: int, max_connections: int,
                 keepalive_s: float, timeout_s: float, tls: list) -> None:
    context = client_ssl_context(*tls) if any(tls[:3]) or not tls[3] else None
    pool = HttpPool(max_connections, keepalive_s, context)
    notifier = Notifier(pool, queue_size, timeout_s)
    socket = zmq.asyncio.Context.instance().socket(zmq.PAIR)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(address)
    targets: dict[bytes, list] = {}
    await socket.send(orjson.dumps({}))          # hello: the worker may send now
    reporter = asyncio.get_running_loop().create_task(_report(socket, notifier, parent))
    try:
        while True:
            frame = await socket.recv()
            if frame == STOP:
                await notifier.drain(1.0)
                return
            target_size, key_size = _FRAME_HEAD.unpack_from(frame)
            start = _FRAME_HEAD.size
            target = frame[start:start + target_size]
            if target not in targets:
                targets[target] = orjson.loads(target)
            url, headers = targets[target]
            key = frame[start + target_size:start + target_size + key_size].decode()
            body = frame[start + target_size + key_size:]
            notifier.send(url, headers, lambda body=body: body, key)
    finally:
        reporter.cancel()
        await notifier.close()
        await pool.close()


async def _report(socket, notifier: Notifier, parent: int) -> None:
    """Credit for what was sent (or failed, or dropped) to the worker every CREDIT_INTERVAL,
    the counters once a second; stop everything when the worker is gone."""
    finished = 0
    ticks = 0
    while True:
        await asyncio.sleep(CREDIT_INTERVAL)
        ticks += 1
        done = sum(notifier.counters.values())
        report: dict = {"credit": done - finished}
        finished = done
        if ticks % round(REPORT_INTERVAL / CREDIT_INTERVAL) == 0:
            if os.getppid() != parent:
                os._exit(0)
            report["counters"] = {f"{endpoint} {what}": value
                                  for (endpoint, what), value in notifier.counters.items()}
        try:
            await socket.send(orjson.dumps(report), zmq.NOBLOCK)
        except zmq.Again:
            pass


def main(argv: list[str]) -> None:
    address, parent, queue_size, max_connections, keepalive_s, timeout_s, tls = argv
    os.nice(10)     # the broker comes first: the sender uses the CPU it leaves
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s [webhooks sender] %(message)s")
    asyncio.run(_serve(address, int(parent), int(queue_size), int(max_connections), float(keepalive_s),
                       float(timeout_s), orjson.loads(tls)))


if __name__ == "__main__":
    main(sys.argv[1:])
