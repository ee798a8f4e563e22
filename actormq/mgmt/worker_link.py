"""The worker's end of the control channel: a ZeroMQ DEALER to the node that
answers admin commands and feeds admin streams on the worker's own loop.

`WorkerLink(broker, endpoint).start()` connects to the node's control endpoint
(`WorkerPlan.control`) and says hello; every `ask`
runs `REGISTRY.run` as a task (so a slow command holds up nothing else) and
sends its `answer`; every `open` starts a stream whose events go back as
`event` frames until the node sends `close` or the worker stops. Frames are
described in `actormq.mgmt.protocol`.
"""

from __future__ import annotations

import asyncio
import logging
import os

import zmq
import zmq.asyncio

from actormq.mgmt import protocol
from actormq.mgmt.commands import REGISTRY, CommandError, UnknownCommand, load_builtin_commands
from actormq.errors import TransportError
from actormq.transport.bus import decode_frame, encode_frame

log = logging.getLogger("actormq.mgmt")


class WorkerLink:
    """One worker's control connection to the node."""

    def __init__(self, broker, endpoint: str) -> None:
        self.broker = broker
        self.worker_id = broker.worker_id
        self._ctx = zmq.asyncio.Context.shadow(zmq.Context.instance())
        self._socket = self._ctx.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.IDENTITY, protocol.worker_identity(self.worker_id))
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 10000)
        self._endpoint = endpoint
        self._reader: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._streams: dict[int, object] = {}

    async def start(self) -> None:
        self._socket.connect(self._endpoint)
        self._send(protocol.HELLO, {"worker": self.worker_id, "pid": os.getpid()})
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def stop(self) -> None:
        for stop in list(self._streams.values()):
            self._stop_stream(stop)
        self._streams.clear()
        for task in (self._reader, *self._tasks):
            if task is not None:
                task.cancel()
        self._socket.close()

    def _send(self, kind: bytes, header) -> None:
        try:
            frame = encode_frame(kind, header)
        except TransportError as exc:       # an answer that is not JSON-able
            log.error("control channel: %s", exc)
            frame = encode_frame(kind, {"id": header.get("id"), "ok": False, "error": str(exc)})
        try:
            self._socket.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            log.warning("control channel to the node is full: %s frame dropped", kind.decode())
        except zmq.ZMQError as exc:
            log.warning("control channel: %s", exc)

    async def _read(self) -> None:
        frame = await self._socket.recv()
        load_builtin_commands()     # at the first request, not on the way to serving clients
        while True:
            self._take(frame)
            frame = await self._socket.recv()

    def _take(self, frame: bytes) -> None:
        try:
            kind, header, _payloads = decode_frame(frame)
        except Exception:
            log.exception("bad control frame dropped: %r", frame[:40])
            return
        if kind == protocol.ASK:
            task = asyncio.get_running_loop().create_task(self._answer(header))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == protocol.OPEN:
            self._open(header)
        elif kind == protocol.CLOSE:
            self._stop_stream(self._streams.pop(header["id"], None))

    async def _answer(self, request: dict) -> None:
        request_id = request["id"]
        try:
            data = await REGISTRY.run(self.broker, request["command"], request.get("args") or {})
            self._send(protocol.ANSWER, {"id": request_id, "ok": True, "data": data})
        except CommandError as exc:
            self._send(protocol.ANSWER, {"id": request_id, "ok": False, "error": str(exc),
                                         "bad_request": True,
                                         "unknown": isinstance(exc, UnknownCommand)})
        except Exception as exc:
            log.exception("admin command %s failed", request.get("command"))
            self._send(protocol.ANSWER, {"id": request_id, "ok": False,
                                         "error": f"{type(exc).__name__}: {exc}"})

    def _open(self, request: dict) -> None:
        request_id = request["id"]

        def emit(event) -> None:
            self._send(protocol.EVENT, {"id": request_id, "event": event})

        try:
            self._streams[request_id] = REGISTRY.open_stream(self.broker, request["stream"],
                                                             request.get("args") or {}, emit)
        except Exception as exc:
            bad = isinstance(exc, CommandError)
            if not bad:
                log.exception("admin stream %s failed to open", request.get("stream"))
            self._send(protocol.ANSWER, {"id": request_id, "ok": False, "error": str(exc),
                                         "bad_request": bad})
            return
        self._send(protocol.ANSWER, {"id": request_id, "ok": True, "data": None})

    @staticmethod
    def _stop_stream(stop) -> None:
        if stop is None:
            return
        try:
            stop()
        except Exception:
            log.exception("stopping an admin stream failed")
