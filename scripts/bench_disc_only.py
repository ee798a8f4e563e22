"""Queue many small messages through the disc_only and disc stores and report
throughput and memory: disc_only memory must not grow with what is stored
(beyond the pages LMDB maps from the file), disc holds what it reads in memory.

    .venv/bin/python scripts/bench_disc_only.py [--messages 1000000] [--clients 3000]

With --drain, the offline drain instead: one client's Queue of --messages
QoS 1 messages (publish 20,000 to an offline subscriber) is popped 100 at a
time, each popped message's PUBLISH cut or encoded as the session does, and
acknowledged (its row deleted), every mode --rounds times, interleaved; it
reports the CPU of the thread that drains (the event loop's in the broker)
and of the whole process (with the writer thread) per message:

    .venv/bin/python scripts/bench_disc_only.py --drain --messages 20000 [--rounds 5]

Each mode runs in a fresh process on a fresh data dir. RSS counts the LMDB
pages the process touched (file-backed, shared with the page cache); RssAnon
and USS show the process's own memory.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from actormq.actors.messages import Delivery, Message  # noqa: E402
from actormq.actors.queue import DISC_ONLY_WINDOW, Queue, QueueLimits  # noqa: E402
from actormq.actors.stored_delivery import StoredDelivery, send_stored  # noqa: E402
from actormq.storage.cached import CachedStore  # noqa: E402
from actormq.storage.lmdb_store import LmdbStore  # noqa: E402
from actormq.storage.records import encode_message, queue_key, queue_prefix  # noqa: E402
from actormq.transport.codec import encode_publish  # noqa: E402

MIB = 1 << 20


def memory() -> dict:
    info = psutil.Process().memory_full_info()
    status = {}
    with open("/proc/self/status") as lines:
        for line in lines:
            name, _, value = line.partition(":")
            if name in ("RssAnon", "RssFile"):
                status[name] = int(value.split()[0]) * 1024
    return {"rss": info.rss, "uss": info.uss, **status}


def show(label: str, mem: dict) -> str:
    return f"{label}: " + " ".join(f"{name}={value / MIB:.1f}MiB" for name, value in mem.items())


def enqueue(store, messages: int, clients: int, batch: int) -> None:
    """Put `messages` in batches; wait for a batch's durability before the one after next."""
    payload = b"p" * 64
    seqs = [0] * clients
    previous = threading.Event()
    previous.set()
    for start in range(0, messages, batch):
        now = time.time()
        for n in range(start, min(start + batch, messages)):
            client = n % clients
            seqs[client] += 1
            msg = Message("bench/topic", payload, qos=1, timestamp=now)
            store.put("queue", queue_key(f"client-{client}", seqs[client]), encode_message(msg, packet_id=None))
        previous.wait()
        previous = threading.Event()
        store.when_durable(previous.set)
    store.flush()


def run(mode: str, data_dir: str, messages: int, clients: int, batch: int, results) -> None:
    before = memory()
    lmdb_store = LmdbStore(data_dir, map_size=64 * MIB, commit_batch=1000)
    store = CachedStore(lmdb_store) if mode == "disc" else lmdb_store
    if mode == "disc":
        for client in range(clients):  # a worker reads the queues it owns, so they are cached
            store.count("queue", queue_prefix(f"client-{client}"))
    started = time.perf_counter()
    enqueue(store, messages, clients, batch)
    elapsed = time.perf_counter() - started
    after = memory()
    stored = store.count("queue")
    store.close()
    size = sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(data_dir) for name in names)
    results.put((mode, before, after, elapsed, stored, size))


def drain(mode: str, data_dir: str, messages: int) -> tuple[float, float]:
    """CPU seconds per message of draining `messages` from one client's queue:
    (the draining thread, the whole process)."""
    lmdb_store = LmdbStore(data_dir, map_size=64 * MIB)
    store = CachedStore(lmdb_store) if mode == "disc" else lmdb_store
    queue = Queue("drained", QueueLimits(max_online=0, max_offline=0), store, durable=True,
                  window=DISC_ONLY_WINDOW if mode == "disc_only" else None, schedule=lambda q: None)
    queue.load()
    now = time.time()
    for _ in range(messages):
        queue.enqueue(Delivery(Message("bench/topic", b"p" * 64, 1, timestamp=now, origin="pub"), 1, False))
    queue.flush()
    store.flush()
    connection = _Sink()
    thread, process = time.thread_time(), time.process_time()
    packet_id = 0
    while True:
        popped = [delivery for delivery in (queue.pop() for _ in range(100)) if delivery is not None]
        if not popped:
            break
        for delivery in popped:
            packet_id = packet_id % 65535 + 1
            if type(delivery) is StoredDelivery:
                send_stored(connection, delivery, packet_id)
            else:
                connection.send_publish(delivery.message, 1, False, packet_id, False)
        for delivery in popped:
            queue.discard(delivery)
        queue.flush()
    store.flush()
    thread, process = time.thread_time() - thread, time.process_time() - process
    store.close()
    return thread / messages, process / messages


class _Sink:
    """What the drain needs of a Connection: the PUBLISH bytes, then nothing."""

    mountpoint = ""
    alias_out = None
    max_packet_out = 0
    version = 4

    def send_publish(self, message, qos, retain, packet_id, dup, sub_ids=()) -> bool:
        self.send_bytes(encode_publish(message.topic_name, message.payload, qos, retain, dup, packet_id,
                                       None, self.version))
        return True

    def send_bytes(self, data: bytes, messages: int = 0) -> None:
        pass


def run_drain(mode: str, data_dir: str, messages: int, results) -> None:
    results.put((mode, *drain(mode, data_dir, messages)))


def main_drain(args, spawn) -> None:
    cpu: dict[str, list] = {}
    for _ in range(args.rounds):
        for mode in args.modes.split(","):
            data_dir = tempfile.mkdtemp(prefix=f"actormq-drain-{mode}-")
            results = spawn.Queue()
            worker = spawn.Process(target=run_drain, args=(mode, data_dir, args.messages, results))
            worker.start()
            mode, thread, process = results.get()
            worker.join()
            shutil.rmtree(data_dir, ignore_errors=True)
            cpu.setdefault(mode, []).append((thread, process))
    print(f"drain of {args.messages} QoS 1 messages of 64 B, {args.rounds} rounds per mode, "
          "CPU per message (median, range): draining thread | whole process")
    for mode, rounds in cpu.items():
        line = []
        for column in (0, 1):
            values = sorted(r[column] * 1e6 for r in rounds)
            line.append(f"{values[len(values) // 2]:.2f} µs ({values[0]:.2f}–{values[-1]:.2f})")
        print(f"   {mode}: " + " | ".join(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--modes", default="disc_only,disc")
    parser.add_argument("--drain", action="store_true", help="measure the offline drain instead")
    parser.add_argument("--rounds", type=int, default=5, help="with --drain: rounds per mode")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    if args.drain:
        main_drain(args, spawn)
        return
    for mode in args.modes.split(","):
        data_dir = tempfile.mkdtemp(prefix=f"actormq-bench-{mode}-")
        results = spawn.Queue()
        worker = spawn.Process(target=run, args=(mode, data_dir, args.messages, args.clients, args.batch, results))
        worker.start()
        mode, before, after, elapsed, stored, size = results.get()
        worker.join()
        shutil.rmtree(data_dir, ignore_errors=True)
        print(f"== {mode}: {args.messages} messages of 64 B payload for {args.clients} clients")
        print(f"   {elapsed:.1f} s, {args.messages / elapsed:,.0f} msg/s, {stored} stored, "
              f"data file {size / MIB:.0f} MiB")
        print("   " + show("before", before))
        print("   " + show("after ", after))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
