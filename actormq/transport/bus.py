"""The ZeroMQ bus between the worker processes of a node: the only module that
knows ZeroMQ.

Each worker binds one inbox (a PULL socket at `ipc://{run_dir}/worker-{id}`)
and connects one PUSH socket to every other worker's inbox. A frame is one
ZeroMQ message: a small envelope (lengths), the kind (a short bytes tag), an
orjson header, and any number of raw length-prefixed payloads (payload bytes
are never base64-encoded). One message rather than a multipart one per part:
pyzmq spends several microseconds per message part, ten times the cost of
copying a small payload (measured: 3 parts 8.6 µs to send, one 0.8 µs).

Small control frames that need no answer in the same loop turn (the
client-id registry's REG, REGD, UNREG) can go `send_soon`: every such frame
for one peer in a loop turn travels in one BAT frame (its payloads are the
frames), which saves a ZeroMQ send and a wake-up of the peer per frame
(measured: connections/s at -w 2). Frames that nobody waits for (a fresh
registration of a client id, the end of sessions) can go `send_later`:
within LATER_SECONDS, in the same batch, so a storm of connections costs a
few bus frames rather than one per loop turn (each ZeroMQ send wakes the I/O
threads of both workers: a dozen system calls). A frame sent to a peer first
sends what waits for it, so the order between two workers is kept.

Sending never blocks. A PUSH socket keeps frames for a peer that is not
there (yet: it is starting, or it died and is being restarted) up to the
high-water mark; past it the frame is dropped and counted. `reset` throws
away what was queued for a dead peer, so its next incarnation starts from a
clean pipe.
"""

from __future__ import annotations

import logging
import os
import struct

import orjson
import zmq

from actormq.errors import TransportError

log = logging.getLogger("actormq.bus")

POLL_SECONDS = 0.05
DRAIN_FRAMES = 4        # frames per loop turn (a PUB frame carries up to a few hundred messages)
LATER_SECONDS = 0.005   # how long a send_later frame may wait for others
_ENVELOPE = struct.Struct(">BI")    # kind length, header length
_PART = struct.Struct(">I")         # payload length
BATCH = b"BAT"
_EVENTS, _POLLIN = zmq.EVENTS, zmq.POLLIN


def encode_frame(kind: bytes, header, payloads=()) -> bytes:
    try:
        head = orjson.dumps(header)
    except orjson.JSONEncodeError as exc:
        raise TransportError(f"bus frame {kind!r} cannot be encoded: {exc}") from exc
    parts = [_ENVELOPE.pack(len(kind), len(head)), kind, head]
    for payload in payloads:
        parts += (_PART.pack(len(payload)), payload)
    return b"".join(parts)


def decode_frame(frame: bytes) -> tuple[bytes, object, list[bytes]]:
    """(kind, header, payloads) of a frame made by encode_frame."""
    kind_len, head_len = _ENVELOPE.unpack_from(frame)
    at = _ENVELOPE.size + kind_len
    kind = frame[_ENVELOPE.size:at]
    header = orjson.loads(frame[at:at + head_len])
    at += head_len
    payloads = []
    end = len(frame)
    while at < end:
        (size,) = _PART.unpack_from(frame, at)
        at += _PART.size
        payloads.append(frame[at:at + size])
        at += size
    return kind, header, payloads


def inbox_path(run_dir: str, worker_id: int) -> str:
    return f"ipc://{os.path.join(run_dir, f'worker-{worker_id}')}"


class Bus:
    """One worker's inbox and its outboxes to the other workers of the node."""

    def __init__(self, run_dir: str, worker_id: int, worker_count: int, hwm: int = 100000) -> None:
        self.worker_id = worker_id
        self.worker_count = worker_count
        self.frames_sent: dict[int, int] = {}
        self.frames_dropped = 0
        self._run_dir = run_dir
        self._hwm = hwm
        self._full: set[int] = set()        # peers whose last frame was dropped (warned once)
        self._ctx = zmq.Context.instance()
        self._loop = None
        self._timer = None
        self._on_frame = None
        self._closed = False
        self._drain_scheduled = False
        self._soon: dict[int, list[bytes]] = {}     # peer -> frames for the end of this turn
        self._later: dict[int, list[bytes]] = {}    # peer -> frames for within LATER_SECONDS
        self._later_timer = None
        try:
            self._inbox = self._ctx.socket(zmq.PULL)
            self._inbox.setsockopt(zmq.RCVHWM, hwm)
            self._inbox.setsockopt(zmq.LINGER, 0)
            self._inbox.bind(inbox_path(run_dir, worker_id))
            self._outboxes: dict[int, zmq.Socket] = {
                peer: self._outbox(peer) for peer in range(worker_count) if peer != worker_id}
        except zmq.ZMQError as exc:
            raise TransportError(f"bus of worker {worker_id}: {exc}") from exc

    def _outbox(self, peer: int) -> zmq.Socket:
        out = self._ctx.socket(zmq.PUSH)
        out.setsockopt(zmq.SNDHWM, self._hwm)
        out.setsockopt(zmq.LINGER, 500)
        out.connect(inbox_path(self._run_dir, peer))
        return out

    @property
    def peers(self) -> list[int]:
        return list(self._outboxes)

    def start(self, loop, on_frame) -> None:
        """Deliver every incoming frame as on_frame(kind, header, payloads) on the loop."""
        self._loop = loop
        self._on_frame = on_frame
        loop.add_reader(self._inbox.getsockopt(zmq.FD), self._take_turn)
        self._timer = loop.call_later(POLL_SECONDS, self._poll)

    def _poll(self) -> None:
        self._take_turn()
        self._timer = self._loop.call_later(POLL_SECONDS, self._poll)

    def _take_turn(self) -> None:
        """Deliver up to DRAIN_FRAMES frames, then let the loop serve the sockets
        before the next ones: a busy peer must not starve this worker's clients.
        ZMQ_FD is edge-triggered, so a turn that stopped early schedules the next."""
        self._drain_scheduled = False
        if not self.drain(DRAIN_FRAMES) and not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._take_turn)

    def drain(self, at_most: int = 0) -> bool:
        """Deliver the frames that have arrived (at most `at_most`, 0: all);
        True when the inbox is empty."""
        if self._closed:
            return True
        inbox = self._inbox
        on_frame = self._on_frame
        taken = 0
        while not at_most or taken < at_most:
            # ZMQ_EVENTS rather than a recv that raises Again: the empty check
            # ends every drain, and pyzmq's exception costs twice the option read
            if not inbox.getsockopt(_EVENTS) & _POLLIN:
                return True
            try:
                frame = inbox.recv(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return True
            taken += 1
            try:
                kind, header, payloads = decode_frame(frame)
                if kind == BATCH:
                    for part in payloads:
                        on_frame(*decode_frame(part))
                else:
                    on_frame(kind, header, payloads)
            except Exception:
                log.exception("bad bus frame dropped: %r", frame[:40])
        return False

    def send(self, peer: int, kind: bytes, header, payloads: tuple = ()) -> bool:
        """Send one frame to one peer; False when it was dropped (the peer's queue is full)."""
        out = self._outboxes.get(peer)
        if out is None or self._closed:
            return False
        if peer in self._soon or peer in self._later:
            self._send_soon_frames(peer)
        return self._send(peer, out, encode_frame(kind, header, payloads))

    def send_soon(self, peer: int, kind: bytes, header) -> bool:
        """Send a frame at the end of this loop turn, with the others for that peer
        (False: the peer is unknown or the bus closed)."""
        if self._loop is None:
            return self.send(peer, kind, header)
        if peer not in self._outboxes or self._closed:
            return False
        frames = self._soon.get(peer)
        if frames is None:
            if not self._soon:
                self._loop.call_soon(self._flush_soon)
            frames = self._soon[peer] = []
        later = self._later.pop(peer, None)
        if later:
            frames += later
        frames.append(encode_frame(kind, header))
        return True

    def send_later(self, peer: int, kind: bytes, header) -> bool:
        """Send a frame within LATER_SECONDS with the others for that peer, or
        with the next frame sent to it (False: the peer is unknown or the bus closed)."""
        if self._loop is None:
            return self.send(peer, kind, header)
        if peer not in self._outboxes or self._closed:
            return False
        frames = self._later.get(peer)
        if frames is None:
            if self._later_timer is None:
                self._later_timer = self._loop.call_later(LATER_SECONDS, self._flush_later)
            frames = self._later[peer] = []
        frames.append(encode_frame(kind, header))
        return True

    def _flush_soon(self) -> None:
        for peer in list(self._soon):
            self._send_soon_frames(peer)

    def _flush_later(self) -> None:
        self._later_timer = None
        for peer in list(self._later):
            self._send_soon_frames(peer)

    def _send_soon_frames(self, peer: int) -> None:
        """Send what waits for the peer: its send_soon frames, then its send_later ones."""
        frames = self._soon.pop(peer, [])
        later = self._later.pop(peer, None)
        if later:
            frames += later
        out = self._outboxes.get(peer)
        if out is not None and not self._closed:
            self._send(peer, out, frames[0] if len(frames) == 1 else
                       encode_frame(BATCH, 0, frames))

    def _send(self, peer: int, out, frame: bytes) -> bool:
        try:
            out.send(frame, zmq.NOBLOCK, copy=True)
        except zmq.Again:
            self.frames_dropped += 1
            if peer not in self._full:
                self._full.add(peer)
                log.warning("bus to worker %d full: dropping frames until it drains", peer)
            return False
        except zmq.ZMQError as exc:
            raise TransportError(f"bus send to worker {peer}: {exc}") from exc
        self._full.discard(peer)
        self.frames_sent[peer] = self.frames_sent.get(peer, 0) + 1
        # Sending may consume the inbox's edge; look again on the next turn.
        if not self._drain_scheduled and self._loop is not None:
            self._drain_scheduled = True
            self._loop.call_soon(self._take_turn)
        return True

    def broadcast(self, kind: bytes, header, payloads: tuple = (), peers=None) -> None:
        """Send one frame to each of `peers` (default: every other worker)."""
        for peer in self._outboxes if peers is None else peers:
            self.send(peer, kind, header, payloads)

    def reset(self, peer: int) -> None:
        """The peer died: drop the frames still queued for it and reconnect."""
        old = self._outboxes.get(peer)
        if old is None or self._closed:
            return
        self._soon.pop(peer, None)
        self._later.pop(peer, None)
        old.setsockopt(zmq.LINGER, 0)
        old.close()
        try:
            self._outboxes[peer] = self._outbox(peer)
        except zmq.ZMQError as exc:
            raise TransportError(f"bus to worker {peer}: {exc}") from exc
        self._full.discard(peer)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._later_timer is not None:
            self._later_timer.cancel()
        if self._loop is not None:
            self._loop.remove_reader(self._inbox.getsockopt(zmq.FD))
        for out in self._outboxes.values():
            out.close()
        self._inbox.close()
