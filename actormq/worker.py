"""One worker process: its event loop (uvloop when installed), its stores, its
Broker with the actors, its listeners and its link to the other workers.

The node starts `worker_main` with multiprocessing (spawn) and a `WorkerPlan`.
The control pipe carries, worker → node: ("started") when the node's first
start holds its listeners until every worker started (answered ("serve"));
("ready", host, port, private_port)
once the worker serves (private_port is None unless
`listener.tcp.worker_ports`) or ("error", text), and ("reloaded", generation,
applied keys, keys that need a restart) after a reload; node → worker:
("peer_down", worker_id, pid) when another worker died, ("reload",
generation, config) on SIGHUP (the broker's `reloader` applies it). The
worker stops cleanly on SIGTERM/SIGINT, or when the node is gone (the pipe
closes): DISCONNECT to its clients, storage flushed, the run dir removed,
exit code 0. It ignores SIGHUP (the node reloads), and `ps` shows it as
`actormq: worker N`.

At `-w 1` without `node.supervised` the worker runs in the node's own process
(`actormq.inprocess`): its control pipe is then a `NodeEnd`, the same messages
handed over in a call, and SIGHUP asks the node to reload.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
from dataclasses import dataclass

from actormq import fdtable
from actormq.gctune import tune_gc
from actormq.errors import ActormqError
from actormq.eventloop import new_event_loop
from actormq.auth.admin import watch_reloads as watch_auth_reloads
from actormq.hooks.reconfigure import watch_settings as watch_plugin_settings
from actormq.inprocess import NodeEnd
from actormq.logsetup import setup_logging
from actormq.proctitle import set_process_title
from actormq.sched_slice import apply_worker_slice, reload_worker_slice

log = logging.getLogger("actormq.worker")

MEET_TIMEOUT = 10.0     # how long a first start waits for the other workers' HELLO


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """What the node tells a worker it spawns."""

    worker_id: int
    worker_count: int
    port: int                       # the shared MQTT port (SO_REUSEPORT)
    run_dir: str | None = None      # where the bus inboxes live
    private_port: int | None = None # this worker's own port: 0 = a free one, None = none
    restore: bool = True            # restore this worker's share of the persisted sessions
    listeners: tuple = ()           # every Listener, ports resolved; a TCP one first
    unix_sockets: dict | None = None    # listener key -> the node's listening Unix socket
    connection_counts: object = None    # shared array of ConnectionSlots (listeners with a limit)
    control: str | None = None      # the node's control channel (admin requests), a ZeroMQ endpoint
    serve_when_told: bool = False   # listen once the node says every worker has started


def open_worker_stores(config):
    """The stores for the configured modes, or None when everything is in RAM."""
    retained_mode = config["retained.storage"]
    queue_mode = config["queue.storage"]
    if retained_mode == "ram" and queue_mode == "ram":
        return None
    from actormq.storage.stores import open_stores
    return open_stores(config["storage.dir"], retained_mode, queue_mode,
                       map_size=config["storage.map_size"],
                       max_map_size=config["storage.max_map_size"],
                       commit_batch=config["storage.commit_batch"],
                       commit_interval_ms=config["storage.commit_interval_ms"],
                       sync=config["storage.sync"] == "on",
                       log=config["storage.log"] == "on")


class Worker:
    """Runs one Broker on its own loop until told to stop."""

    def __init__(self, config, plan: WorkerPlan, control=None) -> None:
        self.config = config
        self.plan = plan
        self.control = control
        self.loop = new_event_loop()
        self.stopping = asyncio.Event()
        self.peers = None
        self.broker = None
        self.node_gone = False
        self.admin = None       # the control link to the node (admin commands)
        self.listening: list = []
        self._serve = self.loop.create_future()     # set by the node's "serve" (serve_when_told)
        self._watching = False

    def run(self) -> int:
        apply_worker_slice(self.config["worker.sched_slice_us"])
        asyncio.set_event_loop(self.loop)
        try:
            return self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> int:
        from actormq.actors.broker import Broker

        plan = self.plan
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, self.stopping.set)
        if isinstance(self.control, NodeEnd):
            self.loop.add_signal_handler(signal.SIGHUP, self.control.reload)
        else:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        stores = open_worker_stores(self.config)
        broker = self.broker = Broker(self.config, self.loop, stores, plan.worker_id,
                                      plan.worker_count)
        broker.reloader.on_reload(("log.level",), self._reload_log_level)
        broker.reloader.on_reload(("worker.sched_slice_us",), reload_worker_slice)
        broker.hooks = await start_hooks(self.config, plan.worker_id)
        watch_plugin_settings(broker, plan.worker_id)
        watch_auth_reloads(broker)
        if stores is not None:
            stores.commit_on(self.loop)
            broker.hold_back_for(stores.writer_backlogs(self.loop))
        if plan.worker_count > 1 and plan.run_dir:
            from actormq.actors.peers import PeerLink
            self.peers = PeerLink(broker, plan.run_dir)
            await self.peers.start()
        broker.start(restore=plan.restore)
        if plan.control:
            from actormq.mgmt.worker_link import WorkerLink
            self.admin = WorkerLink(broker, plan.control)
            await self.admin.start()
        if plan.serve_when_told:
            await self._told_to_serve()
        servers, private_port = await self._listen(broker)
        self.listening = servers
        broker.reloader.on_reload((), self.reload_certificates, always=True)
        tune_gc()
        self._watch_control()
        self._report("ready", self.config["listener.tcp.host"], plan.port, private_port)
        await self.stopping.wait()
        for server in servers:
            server.close()
        if self.admin is not None:
            await self.admin.stop()
        if self.peers is not None:
            self.peers.bus.drain()      # route what peers sent before we stopped
        await broker.stop()
        await broker.hooks.stop()
        broker.connection_log.flush()
        if self.peers is not None:
            await self.peers.stop()
        if stores is not None:
            stores.close()
        if self.node_gone and plan.run_dir:
            shutil.rmtree(plan.run_dir, ignore_errors=True)     # nobody else will
        return 0

    async def _listen(self, broker) -> tuple[list, int | None]:
        """Every listener of the plan, and this worker's own TCP port when planned."""
        from actormq.actors.connection import Connection
        from actormq.transport.listeners import plan_listeners, start_listener
        from actormq.transport.serve import ConnectionSlots, serve_listener

        plan = self.plan
        backlog = self.config["listener.tcp.backlog"]
        unix_sockets = plan.unix_sockets or {}
        servers = []
        for index, listener in enumerate(plan.listeners or plan_listeners(self.config)[:1]):
            slots = None
            if listener.max_connections and plan.connection_counts is not None:
                slots = ConnectionSlots(plan.connection_counts, plan.worker_id, plan.worker_count, index,
                                        listener.max_connections)

            def make_connection(address=None, slot=None, listener=listener):
                return Connection(broker, listener, address, slot)
            servers.append(await serve_listener(self.loop, listener, make_connection, slots, backlog,
                                                unix_sockets.get(listener.key)))
        if plan.private_port is None:
            return servers, None
        private = await start_listener(self.loop, self.config["listener.tcp.host"], plan.private_port,
                                       lambda: Connection(broker), backlog)
        servers.append(private)
        return servers, private.sockets[0].getsockname()[1]

    def reload_certificates(self, _config=None) -> None:
        """Load the certificates of the TLS listeners again (on every config
        reload, SIGHUP): new connections use them, established ones keep theirs."""
        for server in self.listening:
            reload = getattr(server, "reload_certificates", None)
            if reload is not None:
                reload()

    # -- the control pipe ----------------------------------------------------------

    def _watch_control(self) -> None:
        if self.control is not None and not isinstance(self.control, NodeEnd) and \
                not self._watching:
            self._watching = True
            self.loop.add_reader(self.control.fileno(), self._on_control)

    async def _told_to_serve(self) -> None:
        """Say "started", then wait for the node's "serve": it comes once every
        worker has started, so the port opens on a whole node (the kernel
        spreads connections over all its workers, whose registry shards know
        each other) rather than on the first worker ready. "started" waits
        until this worker met every other one (at most MEET_TIMEOUT): a
        subscription made at once reaches them all."""
        if self.peers is not None:
            await self.peers.met_every_peer(MEET_TIMEOUT)
        self._report("started")
        self._watch_control()
        stopping = self.loop.create_task(self.stopping.wait())
        await asyncio.wait((self._serve, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()

    def _on_control(self) -> None:
        try:
            while self.control.poll():
                self.handle_control(self.control.recv())
        except (EOFError, OSError):
            log.warning("the node is gone: stopping")
            self.node_gone = True
            self.loop.remove_reader(self.control.fileno())
            self.stopping.set()

    def handle_control(self, message: tuple) -> None:
        if message[0] == "peer_down" and self.peers is not None:
            self.peers.peer_down(message[1], message[2])
        elif message[0] == "reload":
            self._reload(message[1], message[2])
        elif message[0] == "serve" and not self._serve.done():
            self._serve.set_result(None)

    def _reload(self, generation: int, new_config) -> None:
        self.config, result = self.broker.reloader.apply(self.config, new_config)
        self._report("reloaded", generation, result.applied, result.needs_restart)

    def _reload_log_level(self, config) -> None:
        in_node = isinstance(self.control, NodeEnd)
        setup_logging(config["log.level"], "node" if in_node else f"worker-{self.plan.worker_id}")

    def _report(self, *message) -> None:
        if self.control is not None:
            self.control.send(message)


async def start_hooks(config, worker_id: int):
    """This worker's plugins (checked by the node already), started in order."""
    from actormq.hooks.loader import build_hooks, check_plugins

    hooks = build_hooks(config, check_plugins(config), worker_id)
    await hooks.start()
    return hooks


def worker_main(config, plan: WorkerPlan, control) -> None:
    """Entry point of a spawned worker process."""
    set_process_title(f"actormq: worker {plan.worker_id}")
    setup_logging(config["log.level"], f"worker-{plan.worker_id}")
    fdtable.reserve(fdtable.MAX_RESERVED)     # while this process has one thread
    try:
        code = Worker(config, plan, control).run()
    except ActormqError as exc:
        log.error("worker %d cannot start: %s", plan.worker_id, exc)
        if control is not None:
            control.send(("error", str(exc)))
        code = 2
    except KeyboardInterrupt:
        code = 0
    sys.stdout.flush()
    os._exit(code)
