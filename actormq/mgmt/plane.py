"""The node's control plane: one thread of the node process running its own
asyncio loop with the control channel to the workers (`channel`) and the
management HTTP API (`app`).

The node calls `start_control_plane(node)` before it spawns the workers (it
returns at once; `url` waits until the API serves, or raises why it cannot)
and `stop()` when it stops. The plane reads the node's worker table
(`node.workers`: `worker_id`, `alive`, `process.pid`) and nothing else of it.
Once the HTTP listener is bound, `url` (read by the node for its banner)
writes the state file the CLI reads (`actormq.mgmt.credentials`).

Handlers use `ask_all` / `ask_one` / `open_stream` (see `channel`), and the
node facts below (`workers()`, `started`, `config`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

from actormq.errors import ActormqError
from actormq.mgmt import credentials, protocol
from actormq.mgmt.banned import BanTable
from actormq.mgmt.channel import BadRequest, ControlChannel, Gathered, WorkerFailed
from actormq.mgmt.api_errors import RPC_ERROR, ApiError, bad_parameter
from actormq.mgmt.lazy_http import LazyHttpServer, bind_listening_socket

log = logging.getLogger("actormq.mgmt")

START_TIMEOUT = 10.0


def parse_listener(text: str) -> tuple[str, int] | None:
    """`host:port` or `port` (all interfaces); None for "0" (off)."""
    text = text.strip()
    if text in ("", "0", "off"):
        return None
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or int(port) > 65535:
        raise ActormqError(f"management.listener.http: expected host:port, port or 0, got {text!r}")
    return host, int(port)


class ControlPlane:
    """The control channel and the management API, on a thread of the node."""

    def __init__(self, config, node) -> None:
        self.config = config
        self.node = node
        self.node_name = config["node.name"]
        self.started = time.time()
        self.app_id = config["management.default_application.id"]
        self.secret = credentials.application_secret(config)
        self.max_rows = config["management.max_row_limit"]
        self.timeout = config["management.request_timeout_ms"] / 1000
        self.data_dir = os.path.abspath(config["storage.dir"])
        self.listener = parse_listener(config["management.listener.http"])
        self.banned = BanTable(self.data_dir)
        self._high_water: dict[str, int] = {}
        self._url: str | None = None
        self._state_written = False
        self.endpoint = protocol.control_endpoint(node.run_dir)   # the node removes its run dir
        self.channel: ControlChannel | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stop: asyncio.Event | None = None

    # -- life cycle (called from the node's thread) ---------------------------------

    def start(self) -> None:
        """Start the thread and return: the workers may connect before it binds (ZeroMQ
        retries), so the node spawns them while the HTTP side comes up."""
        self._thread = threading.Thread(target=self._run, name="actormq-control", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str | None:
        """The API's base URL (None when off), once it serves; raises why it could not."""
        self._wait_serving()
        return self._url

    def _wait_serving(self) -> None:
        if self._state_written:
            return
        if not self._ready.wait(START_TIMEOUT):
            raise ActormqError("the management API did not start in time")
        if self._failure is not None:
            raise self._failure
        credentials.write_state(self.data_dir, self._url, self.app_id, self.secret)
        self._state_written = True

    def stop(self) -> None:
        credentials.remove_state(self.data_dir)
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(5.0)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.channel = ControlChannel(self.endpoint, self.node_name,
                                      [h.worker_id for h in self.node.workers],
                                      self._worker_alive, self.timeout)
        self.channel.on_hello = self._worker_connected
        try:
            http = await self._serve_http()
        except BaseException:
            self.channel.close()
            raise
        self.channel.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            if http is not None:
                await http.cleanup()
            self.channel.close()

    async def _serve_http(self) -> LazyHttpServer | None:
        """Bind the API's port now; the app (aiohttp) loads at the first request."""
        if self.listener is None:
            return None
        host, port = self.listener
        try:
            sock = bind_listening_socket(host, port)
        except OSError as exc:
            raise ActormqError(f"management API cannot listen on {host}:{port} "
                               f"(management.listener.http): {exc.strerror or exc}") from None
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self._url = f"http://{shown}:{bound[1]}"
        return LazyHttpServer(self.loop, sock, self._make_app)

    def _make_app(self):
        from actormq.mgmt.app import make_app

        return make_app(self)

    # -- what handlers use ----------------------------------------------------------------

    def _worker_alive(self, worker_id: int) -> bool:
        handle = self.node.workers[worker_id]
        return handle.alive

    def workers(self) -> list[dict[str, Any]]:
        """The node's worker table: id, pid (None while restarting), alive."""
        rows = []
        for handle in self.node.workers:
            process = handle.process
            rows.append({"worker": handle.worker_id, "pid": process.pid if process is not None else None,
                         "alive": handle.alive, "ready": handle.ready})
        return rows

    async def ask_all(self, command: str, args: dict | None = None,
                      timeout: float | None = None) -> Gathered:
        """Every worker's answer (see `ControlChannel.ask_all`); a handler's
        CommandError becomes a 400 answer."""
        gathered = await self.channel.ask_all(command, args, timeout)
        if gathered.bad_request is not None:
            raise bad_parameter(gathered.bad_request)
        if gathered.unknown and not gathered.answers and not gathered.failed:
            raise bad_parameter(f"unknown admin command {command!r}")
        return gathered

    async def ask_rows(self, command: str, args: dict | None = None,
                       optional: bool = False) -> tuple[list[dict], Gathered]:
        """Every worker's rows; 503 (EMQX's RPC error) when no worker answered. With
        `optional`, workers that lack the command answer no rows (a feature not loaded)."""
        gathered = await self.channel.ask_all(command, args)
        if gathered.bad_request is not None:
            raise bad_parameter(gathered.bad_request)
        if gathered.unknown and not optional and not gathered.answers:
            raise bad_parameter(f"unknown admin command {command!r}")
        if gathered.failed and not gathered.answers and not gathered.unknown:
            raise rpc_error(gathered)
        return gathered.rows(), gathered

    async def ask_any(self, command: str, args: dict | None = None) -> Any:
        """The answer of the first worker that gives one (for node-wide state every
        worker holds, such as the retained set)."""
        reasons = []
        for handle in self.node.workers:
            try:
                return await self.ask_one(handle.worker_id, command, args)
            except WorkerFailed as exc:
                reasons.append(str(exc))
        raise ApiError(503, RPC_ERROR, f"no worker answered ({'; '.join(reasons)})")

    async def ask_one(self, worker: int, command: str, args: dict | None = None,
                      timeout: float | None = None) -> Any:
        try:
            return await self.channel.ask_one(worker, command, args, timeout)
        except BadRequest as exc:
            raise bad_parameter(str(exc)) from None

    async def open_stream(self, name: str, args: dict | None = None):
        return await self.channel.open_stream(name, args)

    # -- node facts ---------------------------------------------------------------------

    def high_water(self, name: str, value: int) -> int:
        """The highest value of a gauge seen since the node started (EMQX's `*.max`)."""
        self._high_water[name] = max(self._high_water.get(name, 0), value)
        return self._high_water[name]

    async def push_banned(self) -> None:
        """Send the whole ban table to every worker."""
        await self.channel.ask_all("banned.set", self.banned.command_args())

    def _worker_connected(self, worker: int) -> None:
        """A (re)started worker gets the bans in force."""
        if self.banned.live():
            asyncio.get_running_loop().create_task(
                self.channel.ask_all("banned.set", self.banned.command_args(), workers=[worker]))


def rpc_error(gathered: Gathered) -> ApiError:
    """The answer when no worker answered at all (EMQX's RPC error)."""
    reasons = "; ".join(f"worker {w}: {r}" for w, r in sorted(gathered.failed.items()))
    return ApiError(503, RPC_ERROR, f"no worker answered ({reasons})")


def start_control_plane(node) -> ControlPlane:
    """Start the node's control plane (channel + management API); see the module docstring."""
    plane = ControlPlane(node.config, node)
    plane.start()
    return plane
