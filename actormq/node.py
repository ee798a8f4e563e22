"""The node: the supervisor process of `actormq run`.

Owns the worker table, the run dir (ZeroMQ ipc endpoints of the bus and
the control channel), the listeners (`listener.*`: their certificates loaded
once, so a bad file stops the start; the claims on their ports; the Unix
sockets, bound here and handed to every worker) and the data dir lock. It
claims the ports (so that only its own workers share it: a second broker on
the port stops with "cannot listen on H:P: address already in use"), locks
the data dir ("data dir D is in use by pid N"), checks that the stores open,
spawns the workers (multiprocessing, spawn; at the first start of several,
each listens only once every worker has started: "started", then "serve"),
prints the banner with every
listener once every worker serves, and on SIGTERM/SIGINT stops them all cleanly and exits 0. The
run dir, the claim and the lock go on every exit (the kernel drops the claim
and the lock on kill -9; the workers remove the run dir when the node is gone).

On SIGHUP it reloads the config (`reload_config`, the same file, environment
and flags as at the start) and sends it to every worker ("reload",
generation, config); the first worker to answer ("reloaded", generation,
applied keys, keys that need a restart) decides what is logged, and the
applied keys become part of the config later workers start with (see
`actormq.reload`).

A worker that dies is restarted at once (after a second when it died before
it served, so a worker that cannot start does not spin). Before
that, every other worker hears ("peer_down", worker_id, pid) on its control
pipe: it drops the dead worker's routes and takes over its persisted
sessions. A restarted worker keeps its own port (`listener.tcp.worker_ports`)
and restores no sessions unless no other worker survived.

At `-w 1` the worker runs in the node's own process unless `node.supervised`
is on (`actormq.inprocess`): no worker to restart, no run dir.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import time
from multiprocessing.connection import wait

from actormq import __version__, fdtable, tempdirs
from actormq.auth.warnings import anonymous_warning
from actormq.errors import ActormqError
from actormq.datadir import DataDirLock
from actormq.inprocess import run_in_process
from actormq.logsetup import setup_logging
from actormq.mgmt.plane import start_control_plane
from actormq.proctitle import set_process_title
from actormq.reload import with_applied
from actormq.sigwake import SignalWakeup
from actormq.transport.listeners import bind_unix, claim_ports, plan_listeners
from actormq.transport.serve import check_listener, shared_counts
from actormq.worker import WorkerPlan, open_worker_stores, worker_main

log = logging.getLogger("actormq.node")

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 4.0     # per worker join; the node exits within 5 s of SIGTERM
SUPERVISE_POLL = 0.2
CRASH_LOOP_SECONDS = 1.0    # before restarting a worker that died before it served


class WorkerHandle:
    """The node's view of one worker process."""

    def __init__(self, worker_id: int, private_port: int | None) -> None:
        self.worker_id = worker_id
        self.private_port = private_port    # None: no port of its own; 0 until it reports one
        self.process = None
        self.control = None
        self.respawn_at: float | None = None
        self.restore = True
        self.ready = False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()


class Node:
    """Spawns, watches and stops the worker processes."""

    def __init__(self, config, reload_config=None) -> None:
        self.config = config
        self.reload_config = reload_config      # () -> Config, for SIGHUP
        self.count = config["node.workers"] or os.cpu_count() or 1
        self.in_process = self.count == 1 and not config["node.supervised"]
        self.in_process_worker = None   # the Worker running on this thread (in_process)
        self.ctx = multiprocessing.get_context("spawn")
        without_resource_tracker()
        private = 0 if config["listener.tcp.worker_ports"] else None
        self.workers = [WorkerHandle(i, private) for i in range(self.count)]
        self.run_dir: str | None = None
        self.listeners = plan_listeners(config)
        self.host = self.listeners[0].host
        self.port = 0
        self.unix_sockets: dict = {}
        self.connection_counts = shared_counts(self.listeners, self.count, self.ctx)
        self.stopping = False
        self.control = None     # the control plane: management API, admin requests to workers
        self.reload_requested = False
        self.reload_generation = 0
        self.reload_pending = None          # the Config sent to the workers, until one answers

    def run(self) -> int:
        if self.in_process:
            fdtable.reserve(fdtable.MAX_RESERVED)     # while this process has one thread
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)
        for listener in self.listeners:
            check_listener(listener)
        self.listeners, claims = claim_ports(self.listeners)
        self.port = self.listeners[0].port
        lock = None
        try:
            self._bind_unix()
            lock = DataDirLock(self.config["storage.dir"])
            self._check_storage()
            tempdirs.sweep()
            if self.in_process:
                self.control = start_control_plane(self)
                run_in_process(self)
            else:
                self.run_dir = tempdirs.make("run")  # bus and control endpoints
                self.control = start_control_plane(self)
                self._run_workers()
        finally:
            self._stop_all()
            if self.run_dir is not None:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            if lock is not None:
                lock.release()
            for claim in claims:
                claim.close()
            self._remove_unix_sockets()
        log.info("stopped")
        return 0

    def _run_workers(self) -> None:
        for handle in self.workers:
            self._spawn(handle, serve_when_told=self.count > 1)
        if self.count > 1:
            for handle in self.workers:
                self._await_report(handle, "started")
            for handle in self.workers:
                with contextlib.suppress(OSError):    # it died: its "ready" says so
                    handle.control.send(("serve",))
        for handle in self.workers:
            self._await_report(handle, "ready")
        if not self.stopping:
            self._print_banner()
            self._supervise()

    def _bind_unix(self) -> None:
        for listener in self.listeners:
            if listener.type == "unix":
                self.unix_sockets[listener.key] = bind_unix(listener, self.config["listener.tcp.backlog"])

    def _remove_unix_sockets(self) -> None:
        for listener in self.listeners:
            if listener.key in self.unix_sockets:
                self.unix_sockets.pop(listener.key).close()
                try:
                    os.unlink(listener.path)
                except OSError:
                    pass

    def _check_storage(self) -> None:
        stores = open_worker_stores(self.config)
        if stores is not None:
            stores.close()

    def worker_plan(self, handle: WorkerHandle, serve_when_told: bool = False) -> WorkerPlan:
        return WorkerPlan(handle.worker_id, self.count, self.port, self.run_dir,
                          handle.private_port, handle.restore, self.listeners, self.unix_sockets,
                          self.connection_counts,
                          self.control.endpoint if self.control is not None else None,
                          serve_when_told)

    def _spawn(self, handle: WorkerHandle, serve_when_told: bool = False) -> None:
        parent, child = self.ctx.Pipe()
        plan = self.worker_plan(handle, serve_when_told)
        handle.process = self.ctx.Process(target=worker_main, args=(self.config, plan, child),
                                          name=f"actormq-worker-{handle.worker_id}")
        handle.process.start()
        child.close()
        handle.control = parent
        handle.respawn_at = None
        handle.ready = False

    def _await_report(self, handle: WorkerHandle, kind: str) -> None:
        """Wait for the worker's report `kind` ("started", "ready"); its error raises."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not handle.control.poll(SUPERVISE_POLL):
            if self.stopping:
                return
            if time.monotonic() < deadline:
                continue
            raise ActormqError(f"worker {handle.worker_id} did not start within {READY_TIMEOUT:.0f} s")
        try:
            message = handle.control.recv()
        except EOFError:
            raise ActormqError(f"worker {handle.worker_id} exited during start "
                               f"(exit code {handle.process.exitcode})") from None
        if message[0] != "started" or kind != "started":
            self._take_report(handle, message)

    def _take_report(self, handle: WorkerHandle, message: tuple) -> None:
        if message[0] != "ready":
            raise ActormqError(f"worker {handle.worker_id}: {message[1]}")
        handle.ready = True
        if message[3] is not None:
            handle.private_port = message[3]

    def _print_banner(self) -> None:
        config = self.config
        lines = [f"actormq {__version__} node {config['node.name']}"]
        lines += [f"listening on {listener.address} ({listener.scheme}, {listener.key})"
                  for listener in self.listeners]
        lines += [f"worker {h.worker_id} listening on {self.host}:{h.private_port} "
                  f"(pid {h.process.pid})" for h in self.workers if h.private_port is not None]
        where = ", in the node's own process" if self.in_process else ""
        lines += [
            f"workers: {self.count} (pids {', '.join(str(h.process.pid) for h in self.workers)}{where})",
            f"data dir: {os.path.abspath(config['storage.dir'])}",
            f"storage: retained={config['retained.storage']} queue={config['queue.storage']}",
        ]
        if self.control is not None and self.control.url:
            lines.append(f"management api: {self.control.url}/api/v4")
        lines += filter(None, [anonymous_warning(config)])
        print("\n".join(lines), flush=True)

    def _on_signal(self, signum, _frame) -> None:
        self.stopping = True
        if self.in_process_worker is not None:
            self.in_process_worker.stopping.set()      # before its loop took the signals over

    def _on_reload_signal(self, signum, _frame) -> None:
        self.reload_requested = True

    # -- config reload -----------------------------------------------------------------

    def _reload(self) -> None:
        self.reload_requested = False
        if self.reload_config is None:
            log.warning("SIGHUP: nothing to reload the config from")
            return
        try:
            new = self.reload_config()
        except ActormqError as exc:
            log.error("SIGHUP: config not reloaded, the running one stays: %s", exc)
            return
        log.info("SIGHUP: reloading the config")
        self.reload_generation += 1
        self.reload_pending = new
        if new["log.level"] != self.config["log.level"]:
            setup_logging(new["log.level"], "node")
        for handle in self.workers:
            if handle.alive and handle.ready:
                try:
                    handle.control.send(("reload", self.reload_generation, new))
                except OSError:
                    pass        # it is dying; it restarts with the config below

    def _reloaded(self, generation: int, applied: tuple, needs_restart: tuple) -> None:
        """The first answer to a reload: log it and keep what was applied."""
        if generation != self.reload_generation or self.reload_pending is None:
            return
        self.config = with_applied(self.config, self.reload_pending, applied)
        self.reload_pending = None
        for key in needs_restart:
            log.warning("config key %s changed: needs a restart to take effect", key)
        log.info("config reloaded: %s", ", ".join(applied) if applied else "no reloadable key changed")

    # -- supervision -----------------------------------------------------------------

    def _supervise(self) -> None:
        with SignalWakeup() as wakeup:
            while not self.stopping:
                self._supervise_once(wakeup)

    def _supervise_once(self, wakeup: SignalWakeup) -> None:
        """Wait for a worker's report or exit, a signal, or a respawn that is due."""
        running = [h for h in self.workers if h.process is not None]
        watched = [h.process.sentinel for h in running] + [h.control for h in running]
        if wakeup.fd is not None:
            watched.append(wakeup.fd)
        ready = wait(watched, timeout=self._next_wait(polling=wakeup.fd is None))
        if wakeup.fd in ready:
            wakeup.drain()
        if not self.stopping:
            self._take_events(running, ready)

    def _take_events(self, running: list, ready: list) -> None:
        if self.reload_requested:
            self._reload()
        dead = [h for h in running if h.process.sentinel in ready]
        for handle in running:
            if handle.control in ready and handle not in dead:
                self._read_control(handle)
        for handle in dead:
            self._died(handle, dead)
        self._respawn_due()

    def _next_wait(self, polling: bool = True) -> float | None:
        """Until the next respawn is due; None (no timeout) when none is and a
        signal wakes the wait, SUPERVISE_POLL at most when it does not."""
        due = [h.respawn_at for h in self.workers if h.respawn_at is not None]
        if not due:
            return SUPERVISE_POLL if polling else None
        wait_s = max(0.0, min(due) - time.monotonic())
        return min(SUPERVISE_POLL, wait_s) if polling else wait_s

    def _read_control(self, handle: WorkerHandle) -> None:
        try:
            while handle.control.poll():
                message = handle.control.recv()
                if message[0] == "reloaded":
                    self._reloaded(*message[1:])
                    continue
                self._take_report(handle, message)
                log.info("worker %d restarted (pid %d)", handle.worker_id, handle.process.pid)
        except EOFError:
            pass        # it is exiting: its sentinel says so next
        except ActormqError as exc:
            log.error("%s", exc)

    def _died(self, handle: WorkerHandle, dead: list[WorkerHandle]) -> None:
        process = handle.process
        process.join(1.0)       # its sentinel fired: this reaps it and sets the exit code
        log.warning("worker %d (pid %d) died with exit code %s; restarting", handle.worker_id,
                    process.pid, process.exitcode)
        handle.control.close()
        handle.process = None
        survivors = [h for h in self.workers if h.alive and h not in dead]
        for other in survivors:
            try:
                other.control.send(("peer_down", handle.worker_id, process.pid))
            except OSError:
                pass    # that one is dying as well
        handle.restore = not survivors
        handle.respawn_at = time.monotonic() + (0 if handle.ready else CRASH_LOOP_SECONDS)

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for handle in self.workers:
            if handle.respawn_at is not None and handle.respawn_at <= now:
                self._spawn(handle)

    def _stop_all(self) -> None:
        live = [h for h in self.workers if h.alive]
        for handle in live:
            handle.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for handle in live:
            handle.process.join(max(0.0, deadline - time.monotonic()))
            if handle.process.is_alive():
                log.warning("worker %d did not stop in time; killing it", handle.worker_id)
                handle.process.kill()
                handle.process.join()
        if self.control is not None:
            self.control.stop()


def without_resource_tracker() -> None:
    """Start no resource tracker beside the workers.

    multiprocessing's spawn starts a tracker process (13 MB) with the first
    child, to unlink the named semaphores and shared memory segments a killed
    process leaves behind. The broker makes none (the one array its workers
    share is anonymous memory that goes with the last process), so the tracker
    is pointed at /dev/null: it is taken for running, and what a plugin might
    register there is dropped, as it is when the tracker is gone.
    """
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_fd", 0) is None:
        tracker._fd = os.open(os.devnull, os.O_WRONLY)


def run_node(config, reload_config=None) -> int:
    """Run the broker until SIGTERM/SIGINT; returns the process exit code.
    `reload_config()` gives the config again on SIGHUP."""
    setup_logging(config["log.level"], "node")
    set_process_title("actormq: node")
    return Node(config, reload_config).run()
