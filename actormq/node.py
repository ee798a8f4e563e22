"""The node: the supervisor process of `actormq run`.

Owns the worker table, the run dir (ZeroMQ ipc endpoints) and the listener
port. It resolves the port, checks that the data dir opens, spawns the
workers (multiprocessing, spawn), prints the banner once every worker
serves, restarts a worker that dies, and on SIGTERM/SIGINT stops them all
cleanly and exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from multiprocessing.connection import wait

from actormq import __version__
from actormq.errors import ActormqError
from actormq.logsetup import setup_logging
from actormq.transport.listeners import reserve_port
from actormq.worker import open_worker_stores, worker_main

log = logging.getLogger("actormq.node")

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class WorkerHandle:
    """The node's view of one worker process."""

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id
        self.process = None
        self.control = None
        self.started_at = 0.0


class Node:
    """Spawns, watches and stops the worker processes."""

    def __init__(self, config) -> None:
        self.config = config
        self.count = config["node.workers"] or os.cpu_count() or 1
        self.ctx = multiprocessing.get_context("spawn")
        self.workers = [WorkerHandle(i) for i in range(self.count)]
        self.run_dir = tempfile.mkdtemp(prefix="actormq-run-")
        self.port = 0
        self.stopping = False

    def run(self) -> int:
        host = self.config["listener.tcp.host"]
        reserved, self.port = reserve_port(host, self.config["listener.tcp.port"])
        try:
            self._check_storage()
            for handle in self.workers:
                self._spawn(handle)
            for handle in self.workers:
                self._await_ready(handle)
        except BaseException:
            self._stop_all()
            shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        finally:
            reserved.close()
        self._print_banner(host)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self._supervise()
        finally:
            self._stop_all()
            shutil.rmtree(self.run_dir, ignore_errors=True)
        log.info("stopped")
        return 0

    def _check_storage(self) -> None:
        stores = open_worker_stores(self.config)
        if stores is not None:
            stores.close()

    def _spawn(self, handle: WorkerHandle) -> None:
        parent, child = self.ctx.Pipe()
        handle.process = self.ctx.Process(
            target=worker_main, name=f"actormq-worker-{handle.worker_id}",
            args=(self.config, handle.worker_id, self.count, self.port, child, self.run_dir))
        handle.process.start()
        child.close()
        handle.control = parent
        handle.started_at = time.monotonic()

    def _await_ready(self, handle: WorkerHandle) -> None:
        if not handle.control.poll(READY_TIMEOUT):
            raise ActormqError(f"worker {handle.worker_id} did not start within {READY_TIMEOUT:.0f} s")
        try:
            message = handle.control.recv()
        except EOFError:
            raise ActormqError(f"worker {handle.worker_id} exited during start "
                               f"(exit code {handle.process.exitcode})") from None
        if message[0] != "ready":
            raise ActormqError(f"worker {handle.worker_id}: {message[1]}")

    def _print_banner(self, host: str) -> None:
        config = self.config
        lines = [
            f"actormq {__version__} node {config['node.name']}",
            f"listening on {host}:{self.port} (mqtt/tcp)",
            f"workers: {self.count} (pids {', '.join(str(h.process.pid) for h in self.workers)})",
            f"data dir: {os.path.abspath(config['storage.dir'])}",
            f"storage: retained={config['retained.storage']} queue={config['queue.storage']}",
        ]
        print("\n".join(lines), flush=True)

    def _on_signal(self, signum, _frame) -> None:
        self.stopping = True

    def _supervise(self) -> None:
        while not self.stopping:
            sentinels = {h.process.sentinel: h for h in self.workers}
            for sentinel in wait(list(sentinels), timeout=0.2):
                if self.stopping:
                    break
                self._restart(sentinels[sentinel])

    def _restart(self, handle: WorkerHandle) -> None:
        code = handle.process.exitcode
        log.warning("worker %d (pid %d) died with exit code %s; restarting", handle.worker_id,
                    handle.process.pid, code)
        handle.control.close()
        self._spawn(handle)
        try:
            self._await_ready(handle)
        except ActormqError as exc:
            log.error("%s", exc)
            time.sleep(1.0)

    def _stop_all(self) -> None:
        live = [h for h in self.workers if h.process is not None and h.process.is_alive()]
        for handle in live:
            handle.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for handle in live:
            handle.process.join(max(0.0, deadline - time.monotonic()))
            if handle.process.is_alive():
                log.warning("worker %d did not stop in time; killing it", handle.worker_id)
                handle.process.kill()
                handle.process.join()


def run_node(config) -> int:
    """Run the broker until SIGTERM/SIGINT; returns the process exit code."""
    setup_logging(config["log.level"], "node")
    return Node(config).run()
