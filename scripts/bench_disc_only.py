"""Queue many small messages through the disc_only and disc stores and report
throughput and memory: disc_only memory must not grow with what is stored
(beyond the pages LMDB maps from the file), disc holds what it reads in memory.

    .venv/bin/python scripts/bench_disc_only.py [--messages 1000000] [--clients 3000]

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

from actormq.actors.messages import Message  # noqa: E402
from actormq.storage.cached import CachedStore  # noqa: E402
from actormq.storage.lmdb_store import LmdbStore  # noqa: E402
from actormq.storage.records import encode_message, queue_key, queue_prefix  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--modes", default="disc_only,disc")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
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
