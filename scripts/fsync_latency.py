"""The disk's flush latency where the data dir lives: os.fsync and
os.fdatasync of a 4 KiB write, and an LMDB commit of 50 queue-sized rows with
storage.sync on (two flushes: the data, then the meta page) and off, and with
on as the broker commits (its data file preallocated, see lmdb_env.py); p50
and p99 of each. A commit with sync on takes at least this long, so one
publisher's acknowledgements come at most one window per commit.

    .venv/bin/python scripts/fsync_latency.py [DIR] [--rounds 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import lmdb

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from actormq.storage.lmdb_env import LmdbEnv  # noqa: E402

BLOCK = b"x" * 4096
ROWS_PER_COMMIT = 50


def percentiles(times: list[float]) -> str:
    times = sorted(times)
    return (f"p50 {times[len(times) // 2] * 1e6:,.0f} µs, "
            f"p99 {times[min(len(times) - 1, len(times) * 99 // 100)] * 1e6:,.0f} µs")


def flush_times(directory: str, flush, rounds: int) -> list[float]:
    fd, path = tempfile.mkstemp(dir=directory, prefix="fsync-probe-")
    try:
        times = []
        for n in range(rounds):
            os.pwrite(fd, BLOCK, (n % 16) * len(BLOCK))
            started = time.perf_counter()
            flush(fd)
            times.append(time.perf_counter() - started)
        return times
    finally:
        os.close(fd)
        os.unlink(path)


def batches(rounds: int):
    seq = 0
    for _ in range(rounds):
        rows = []
        for _ in range(ROWS_PER_COMMIT):
            seq += 1
            rows.append((b"client\x00" + seq.to_bytes(8, "big"), b"v" * 150))
        yield rows


def commit_times(directory: str, sync: bool, rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory(dir=directory, prefix="lmdb-probe-") as path:
        env = lmdb.open(path, map_size=1 << 28, sync=sync, max_dbs=1)
        queue = env.open_db(b"queue")
        times = []
        for rows in batches(rounds):
            started = time.perf_counter()
            with env.begin(write=True) as txn:
                txn.cursor(db=queue).putmulti(rows)
            times.append(time.perf_counter() - started)
        env.close()
        return times


def store_commit_times(directory: str, rounds: int) -> list[float]:
    """Commits of the broker's LmdbEnv with sync on (its data file preallocated)."""
    with tempfile.TemporaryDirectory(dir=directory, prefix="lmdb-probe-") as path:
        env = LmdbEnv(path, map_size=1 << 28, sync=True)
        times = []
        for rows in batches(rounds):
            ops = [(n, "queue", key, value) for n, (key, value) in enumerate(rows)]
            started = time.perf_counter()
            env.commit(ops)
            times.append(time.perf_counter() - started)
        env.close()
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", default=".")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(f"{args.directory}, {args.rounds} rounds each")
    print(f"  fsync of 4 KiB:      {percentiles(flush_times(args.directory, os.fsync, args.rounds))}")
    print(f"  fdatasync of 4 KiB:  {percentiles(flush_times(args.directory, os.fdatasync, args.rounds))}")
    for sync in (True, False):
        print(f"  LMDB commit of {ROWS_PER_COMMIT} rows, sync {'on ' if sync else 'off'}: "
              f"{percentiles(commit_times(args.directory, sync, args.rounds))}")
    print(f"  the broker's commit of {ROWS_PER_COMMIT} rows, sync on (preallocated): "
          f"{percentiles(store_commit_times(args.directory, args.rounds))}")


if __name__ == "__main__":
    main()
