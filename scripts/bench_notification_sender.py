#!/usr/bin/env python3
"""What one delivered notification costs in CPU: the notification sender's sink (in this
process) and the endpoint or ExHook server that answers it (bench_webhooks.py's, in its own
process), per notification, for

- ``http``: VerneMQ `on_publish` records as a worker hands them over (captured fields),
  POSTed by `HttpSink` to bench_webhooks.py's endpoint (an HTTP/1.1 keep-alive server on an
  asyncio protocol with httptools' parser),
- ``grpc``: ExHook `message.publish` notifications (`message_record`), called by `GrpcSink`
  on bench_webhooks.py's ExHook server (grpcio's threaded server, generic handlers).

Each batch of `--count` records is put at once from `--clients` client ids (a client's
records share a lane, in order) and waited for until every one was answered.

    python scripts/bench_notification_sender.py --kind http     # run it under `chrt -f 20` on a busy machine

On two cores the broker, its clients, the sender and a local endpoint share the CPU: a
notification delivered costs some hundred µs in the sender and as much in the endpoint,
tens of routed messages; hence the share bench_webhooks.py sees dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS.parent))
sys.path.insert(0, str(SCRIPTS))

import orjson  # noqa: E402

import bench_suite as suite  # noqa: E402
from bench_webhooks import Helper, wait_serving  # noqa: E402
from actormq.actors.messages import Message  # noqa: E402
from actormq.gctune import tune_gc  # noqa: E402
from actormq.hooks import ClientInfo  # noqa: E402
from actormq.eventloop import new_event_loop  # noqa: E402

CLIENT = ClientInfo("pub-1", "joe", b"pw", "127.0.0.1", 40001, protocol_level=4)
MESSAGE = Message("fanin/1", b"x" * 64, 0, False)


def http_sink(port: int):
    """The sink and what a worker hands it per on_publish event."""
    from actormq.webhooks import events
    from actormq.webhooks.sender import HttpSink
    sink = HttpSink(10_000, [100, 60.0, 5.0, ["", "", "", True]])
    target = orjson.dumps([f"http://{suite.HOST}:{port}/hook",
                           {"Content-Type": "application/json", "vernemq-hook": "on_publish"}, 5.0])
    body = ("on_publish", True, events.message_fields(CLIENT, MESSAGE), events.message_event.__name__)
    return sink, target, lambda: body


def grpc_sink(port: int):
    """The sink and what a worker hands it per message.publish notification."""
    from actormq.exhook import convert
    from actormq.exhook.sender import GrpcSink
    sink = GrpcSink(10_000, [["bench", f"{suite.HOST}:{port}", False, "", "", "", 5.0, "actormq@127.0.0.1"]])
    return sink, b"bench OnMessagePublish", lambda: {"message": convert.message_record(MESSAGE, CLIENT)}


async def measure(kind: str, port: int, endpoint: Helper, count: int, batches: int, clients: int) -> dict:
    sink, target, body = (http_sink if kind == "http" else grpc_sink)(port)
    keys = [f"pub-{index}" for index in range(clients)]

    async def batch(size: int) -> None:
        done = sum(sink.counters.values()) + size
        for index in range(size):
            sink.put(target, keys[index % clients], body())
        while sum(sink.counters.values()) < done:
            await asyncio.sleep(0.001)

    await batch(200)                    # connections open, code warm
    received, own, endpoint_cpu = endpoint.received(), time.process_time(), endpoint.cpu()
    started = time.perf_counter()
    for _ in range(batches):
        await batch(count)
    elapsed = time.perf_counter() - started
    total = count * batches
    result = {"rate": total / elapsed, "sender_us": (time.process_time() - own) / total * 1e6,
              "endpoint_us": (endpoint.cpu() - endpoint_cpu) / total * 1e6,
              "received": endpoint.received() - received, "handed": total,
              "counters": {what: value for (_, what), value in sink.counters.items()}}
    await sink.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("http", "grpc"), default="http")
    parser.add_argument("--count", type=int, default=2000, help="notifications per batch")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="client ids the notifications come from")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # at this script's priority: the endpoint's CPU per answer is measured, not its share
        endpoint = (Helper(Path(tmp), "--serve-http", priority="same") if args.kind == "http" else
                    Helper(Path(tmp), "--serve-grpc", "message.publish", priority="same"))
        try:
            time.sleep(1)
            if args.kind == "grpc":
                wait_serving([endpoint.port])
            tune_gc()
            with asyncio.Runner(loop_factory=new_event_loop) as runner:     # the sender's own loop
                result = runner.run(measure(args.kind, endpoint.port, endpoint, args.count, args.batches,
                                            args.clients))
        finally:
            endpoint.process.terminate()
            endpoint.process.wait(10)
    print(f"{args.kind}: {result['rate']:,.0f} notifications/s; CPU per notification: sender "
          f"{result['sender_us']:.0f} µs, endpoint {result['endpoint_us']:.0f} µs; the endpoint received "
          f"{result['received']:,} of {result['handed']:,} ({result['counters']})")


if __name__ == "__main__":
    main()
