"""One worker process: its event loop (uvloop when installed), its stores, its
Broker with the actors, its listener and its link to the other workers.

The node starts `worker_main` with multiprocessing (spawn); the worker says
"ready" (with its listener address) on the control pipe once it serves, and
stops cleanly on SIGTERM/SIGINT: DISCONNECT to its clients, storage flushed,
exit code 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from actormq.errors import ActormqError

log = logging.getLogger("actormq.worker")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


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
                       commit_interval_ms=config["storage.commit_interval_ms"])


class Worker:
    """Runs one Broker on its own loop until told to stop."""

    def __init__(self, config, worker_id: int, worker_count: int, port: int, control=None,
                 bus_dir: str | None = None) -> None:
        self.config = config
        self.worker_id = worker_id
        self.worker_count = worker_count
        self.port = port
        self.control = control
        self.bus_dir = bus_dir
        self.loop = new_event_loop()
        self.stopping = asyncio.Event()

    def run(self) -> int:
        asyncio.set_event_loop(self.loop)
        try:
            return self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> int:
        from actormq.actors.broker import Broker
        from actormq.actors.connection import Connection
        from actormq.transport.listeners import start_listener

        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, self.stopping.set)
        stores = open_worker_stores(self.config)
        broker = Broker(self.config, self.loop, stores, self.worker_id, self.worker_count)
        peers = None
        if self.worker_count > 1 and self.bus_dir:
            from actormq.actors.peers import PeerLink
            peers = PeerLink(broker, self.bus_dir)
            await peers.start()
        broker.start()
        host = self.config["listener.tcp.host"]
        server = await start_listener(self.loop, host, self.port, lambda: Connection(broker),
                                      self.config["listener.tcp.backlog"])
        self._report("ready", host, self.port)
        await self.stopping.wait()
        server.close()
        await broker.stop()
        if peers is not None:
            await peers.stop()
        if stores is not None:
            stores.close()
        return 0

    def _report(self, *message) -> None:
        if self.control is not None:
            self.control.send(message)


def worker_main(config, worker_id: int, worker_count: int, port: int, control,
                bus_dir: str | None) -> None:
    """Entry point of a spawned worker process."""
    from actormq.logsetup import setup_logging

    setup_logging(config["log.level"], f"worker-{worker_id}")
    try:
        code = Worker(config, worker_id, worker_count, port, control, bus_dir).run()
    except ActormqError as exc:
        log.error("worker %d cannot start: %s", worker_id, exc)
        if control is not None:
            control.send(("error", str(exc)))
        code = 2
    except KeyboardInterrupt:
        code = 0
    sys.stdout.flush()
    os._exit(code)
