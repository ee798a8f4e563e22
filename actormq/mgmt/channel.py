"""The node's end of the control channel: ask every worker, gather one answer.

`ControlChannel` binds a ZeroMQ ROUTER (frames in `actormq.mgmt.protocol`)
on the control plane's asyncio loop. The node-wide way to ask is

    gathered = await channel.ask_all("sessions.list", {"client_id": "x"})
    gathered.rows()      # every worker's rows, each with "node" and "worker" first
    gathered.answers     # {worker_id: data} of the workers that answered
    gathered.failed      # {worker_id: "did not answer within 5.0 s" | "down" | ...}

Every worker is asked at once; each has `timeout` seconds (default
`management.request_timeout_ms`). A worker that is down, not connected, too
slow or whose handler raised is named in `failed` with the reason, never
waited for past the timeout: callers show partial answers and say who is
missing (`Gathered.failures()` gives rows for that). `ask_one(worker, ...)`
asks one worker and raises `WorkerFailed`. A handler's `CommandError`
becomes `BadRequest` (the HTTP layer answers 400).

`open_stream(name, args)` starts an admin stream on every worker and yields
(worker, event) until the caller closes it (`async with` / `aclose`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterable

import zmq
import zmq.asyncio

from actormq.mgmt import protocol
from actormq.transport.bus import decode_frame, encode_frame

log = logging.getLogger("actormq.mgmt")

OK, FAILED, BAD, UNKNOWN = "ok", "failed", "bad request", "unknown command"


class WorkerFailed(Exception):
    """One worker did not give an answer (down, too slow, or its handler failed)."""

    def __init__(self, worker: int, reason: str) -> None:
        super().__init__(f"worker {worker}: {reason}")
        self.worker = worker
        self.reason = reason


class BadRequest(Exception):
    """A worker's handler refused the arguments (CommandError)."""


@dataclass
class Gathered:
    """The answers of every worker to one admin command."""

    node: str
    answers: dict[int, Any] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    bad_request: str | None = None
    unknown: set[int] = field(default_factory=set)     # workers without that command

    def rows(self) -> list[dict]:
        """Every answering worker's rows with node and worker first (a list answer is
        a list of rows; any other answer one row, non-dict values under "result")."""
        rows = []
        for worker in sorted(self.answers):
            data = self.answers[worker]
            for row in data if isinstance(data, list) else [data]:
                fields = row if isinstance(row, dict) else {"result": row}
                rows.append({"node": self.node, "worker": worker, **fields})
        return rows

    def failures(self) -> list[dict]:
        return [{"node": self.node, "worker": worker, "reason": reason}
                for worker, reason in sorted(self.failed.items())]

    @property
    def complete(self) -> bool:
        return not self.failed


class ControlChannel:
    """The ROUTER socket, the pending requests and the open streams."""

    def __init__(self, endpoint: str, node_name: str, worker_ids: Iterable[int],
                 is_alive: Callable[[int], bool], timeout: float = 5.0) -> None:
        self.node_name = node_name
        self.worker_ids = list(worker_ids)
        self.is_alive = is_alive
        self.timeout = timeout
        self.connected: dict[int, int] = {}        # worker id -> pid of its last hello
        self.on_hello: Callable[[int], None] | None = None     # a worker (re)connected
        self._ctx = zmq.asyncio.Context.shadow(zmq.Context.instance())
        self._socket = self._ctx.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._socket.setsockopt(zmq.ROUTER_HANDOVER, 1)   # a restarted worker takes its identity over
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(endpoint)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._streams: dict[int, asyncio.Queue] = {}
        self._reader: asyncio.Task | None = None

    def start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self._socket.close()

    # -- asking -------------------------------------------------------------------------

    async def ask_all(self, command: str, args: dict | None = None, timeout: float | None = None,
                      workers: Iterable[int] | None = None) -> Gathered:
        """Ask every worker (or `workers`) at once; see the module docstring."""
        targets = self.worker_ids if workers is None else list(workers)
        results = await asyncio.gather(*(self._ask(w, command, args or {}, timeout) for w in targets))
        gathered = Gathered(self.node_name)
        for worker, (status, data) in zip(targets, results):
            if status == OK:
                gathered.answers[worker] = data
            elif status == UNKNOWN:
                gathered.unknown.add(worker)
            elif status == BAD:
                gathered.bad_request = data
            else:
                gathered.failed[worker] = data
        return gathered

    async def ask_one(self, worker: int, command: str, args: dict | None = None,
                      timeout: float | None = None) -> Any:
        status, data = await self._ask(worker, command, args or {}, timeout)
        if status in (BAD, UNKNOWN):
            raise BadRequest(data)
        if status != OK:
            raise WorkerFailed(worker, data)
        return data

    async def _ask(self, worker: int, command: str, args: dict,
                   timeout: float | None) -> tuple[str, Any]:
        """(OK, data) or (FAILED | BAD | UNKNOWN, the reason)."""
        timeout = self.timeout if timeout is None else timeout
        request_id = next(self._ids)
        sent = self._request(worker, protocol.ASK, {"id": request_id, "command": command, "args": args})
        if sent is not None:
            return FAILED, sent
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            answer = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return FAILED, f"did not answer within {timeout:g} s"
        finally:
            self._pending.pop(request_id, None)
        if answer.get("ok"):
            return OK, answer.get("data")
        if answer.get("unknown"):
            return UNKNOWN, answer.get("error")
        return (BAD if answer.get("bad_request") else FAILED), answer.get("error", "failed")

    def _request(self, worker: int, kind: bytes, header: dict) -> str | None:
        """Send one frame to a worker; the reason it could not be sent, or None."""
        if not self.is_alive(worker):
            return "down"
        try:
            self._socket.send_multipart([protocol.worker_identity(worker), encode_frame(kind, header)],
                                        zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                return "not connected to the control channel"
            return f"cannot be asked: {exc}"
        return None

    # -- streams ----------------------------------------------------------------------------

    async def open_stream(self, name: str, args: dict | None = None,
                          timeout: float | None = None) -> "Stream":
        """Open an admin stream on every worker; `Stream.failed` names who did not start it."""
        request_id = next(self._ids)
        queue: asyncio.Queue = asyncio.Queue(maxsize=10000)
        self._streams[request_id] = queue
        stream = Stream(self, request_id, queue)
        header = {"id": request_id, "stream": name, "args": args or {}}
        for worker in self.worker_ids:
            reason = self._request(worker, protocol.OPEN, header)
            if reason is not None:
                stream.failed[worker] = reason
        return stream

    def _close_stream(self, request_id: int) -> None:
        self._streams.pop(request_id, None)
        for worker in self.worker_ids:
            self._request(worker, protocol.CLOSE, {"id": request_id})

    # -- incoming -----------------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            identity, frame = await self._socket.recv_multipart()
            worker = protocol.worker_of(identity)
            try:
                kind, header, _payloads = decode_frame(frame)
            except Exception:
                log.exception("bad control frame from %r dropped", identity)
                continue
            if kind == protocol.ANSWER:
                self._answered(worker, header)
            elif kind == protocol.EVENT:
                self._event(worker, header)
            elif kind == protocol.HELLO and worker is not None:
                self.connected[worker] = header.get("pid")
                if self.on_hello is not None:
                    self.on_hello(worker)

    def _answered(self, worker: int | None, header: dict) -> None:
        future = self._pending.get(header.get("id"))
        if future is not None and not future.done():
            future.set_result(header)
            return
        queue = self._streams.get(header.get("id"))
        if queue is not None and not header.get("ok"):
            self._offer(queue, (worker, {"error": header.get("error")}))

    def _event(self, worker: int | None, header: dict) -> None:
        queue = self._streams.get(header.get("id"))
        if queue is not None:
            self._offer(queue, (worker, header.get("event")))

    @staticmethod
    def _offer(queue: asyncio.Queue, item) -> None:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            log.warning("admin stream reader too slow: event dropped")


class Stream:
    """An open admin stream: iterate over (worker, event); close when done."""

    def __init__(self, channel: ControlChannel, request_id: int, queue: asyncio.Queue) -> None:
        self._channel = channel
        self._id = request_id
        self._queue = queue
        self.failed: dict[int, str] = {}
        self.closed = False

    def __aiter__(self) -> AsyncIterator[tuple[int, Any]]:
        return self

    async def __anext__(self) -> tuple[int, Any]:
        if self.closed:
            raise StopAsyncIteration
        return await self._queue.get()

    async def next(self, timeout: float) -> tuple[int, Any] | None:
        """The next event, or None when none came within `timeout` seconds."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._channel._close_stream(self._id)

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.close()
