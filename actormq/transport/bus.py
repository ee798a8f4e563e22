"""The bus between the worker processes of a node, and the frame format it
shares with the node's ZeroMQ control channel (`mgmt`).

Each worker listens on one inbox (a Unix stream socket at
`{run_dir}/worker-{id}`) and connects to every other worker's inbox; the
event loops write and read these sockets themselves (see `bus_streams`: a
ZeroMQ hop woke an I/O thread in both processes besides the receiving loop,
which more than doubled a message's way across workers and its CPU cost). A
frame is a small envelope (lengths), the kind (a short bytes tag), an orjson
header, and any number of raw length-prefixed payloads (payload bytes are
never base64-encoded). One blob rather than a ZeroMQ multipart message where
frames travel over ZeroMQ: pyzmq spends several microseconds per message
part, ten times the cost of copying a small payload (measured: 3 parts
8.6 µs to send, one 0.8 µs).

Small control frames that need no answer in the same loop turn (the
client-id registry's REG, REGD, UNREG) can go `send_soon`: every such frame
for one peer in a loop turn travels in one BAT frame (its payloads are the
frames), which saves a send and a wake-up of the peer per frame
(measured: connections/s at -w 2). Many small items of one kind in a loop
turn (the fresh registrations of client ids) can go `send_soon_item`: the
items sent one after another to a peer travel as one frame of that kind
(header {"w": sender, "i": [items]}), one header to encode and decode for
all of them. Frames that nobody waits for (the end of sessions) can go
`send_later`:
within LATER_SECONDS, in the same batch, so a storm of connections costs a
few bus frames rather than one per loop turn. A frame sent to a peer first
sends what waits for it, so the order between two workers is kept.

Sending never blocks. Frames for a peer that is not there (yet: it is
starting, or it died and is being restarted) or that does not read fast
enough wait, up to the high-water mark (`bus.hwm` frames); past it the frame
is dropped and counted. `reset` throws away what waited for a dead peer, so
its next incarnation starts from a clean pipe.
"""

from __future__ import annotations

import logging
import os
import struct

import orjson

from actormq.errors import TransportError
from actormq.transport.bus_streams import Inbound, Outbound, listen, stream_frame

log = logging.getLogger("actormq.bus")

POLL_SECONDS = 0.05     # how often a peer not listening yet is tried again (while frames wait)
DRAIN_FRAMES = 4        # frames per loop turn (a PUB frame carries up to a few hundred messages)
LATER_SECONDS = 0.005   # how long a send_later frame may wait for others
CLOSE_SECONDS = 0.5     # how long a closing bus tries to send what still waits
_ENVELOPE = struct.Struct(">BI")    # kind length, header length
_PART = struct.Struct(">I")         # payload length
BATCH = b"BAT"


class _Items:
    """Items for one frame of `kind` (send_soon_item), encoded when it is sent."""

    __slots__ = ("kind", "items")

    def __init__(self, kind: bytes, item) -> None:
        self.kind = kind
        self.items = [item]


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
    return os.path.join(run_dir, f"worker-{worker_id}")


class Bus:
    """One worker's inbox and its outboxes to the other workers of the node."""

    def __init__(self, run_dir: str, worker_id: int, worker_count: int, hwm: int = 100000) -> None:
        self.worker_id = worker_id
        self.worker_count = worker_count
        self.frames_sent: dict[int, int] = {}
        self.frames_dropped = 0
        self._hwm = hwm
        self._full: set[int] = set()        # peers whose last frame was dropped (warned once)
        self._loop = None
        self._timer = None
        self._on_frame = None
        self._closed = False
        self._drain_scheduled = False
        self._soon: dict[int, list[bytes]] = {}     # peer -> frames for the end of this turn
        self._later: dict[int, list[bytes]] = {}    # peer -> frames for within LATER_SECONDS
        self._later_timer = None
        self._inbound: dict[int, Inbound] = {}      # fd -> a connection a peer opened
        try:
            self._inbox = listen(inbox_path(run_dir, worker_id))
        except OSError as exc:
            raise TransportError(f"bus of worker {worker_id}: {exc}") from exc
        self._outboxes: dict[int, Outbound] = {
            peer: Outbound(inbox_path(run_dir, peer)) for peer in range(worker_count)
            if peer != worker_id}
        for out in self._outboxes.values():
            out.connect()

    @property
    def peers(self) -> list[int]:
        return list(self._outboxes)

    def start(self, loop, on_frame) -> None:
        """Deliver every incoming frame as on_frame(kind, header, payloads) on the loop."""
        self._loop = loop
        self._on_frame = on_frame
        loop.add_reader(self._inbox.fileno(), self._accept)
        for fd in self._inbound:
            loop.add_reader(fd, self._take_turn)
        self._arm_poll()
        self._accept()

    def _arm_poll(self) -> None:
        """Try the peers that were not listening again in POLL_SECONDS. Armed
        only while frames wait for such a peer: a timer that fires for nothing
        20 times a second wakes an idle worker as often, and a message that
        arrives meanwhile waits for it."""
        if self._timer is None and self._loop is not None and not self._closed:
            self._timer = self._loop.call_later(POLL_SECONDS, self._poll)

    def _poll(self) -> None:
        """Send what waits for peers that were not listening yet."""
        self._timer = None
        self._poll_waiting()
        if any(out.waiting and not out.writing for out in self._outboxes.values()):
            self._arm_poll()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._inbox.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("bus of worker %d: accept failed: %s", self.worker_id, exc)
                return
            self._inbound[sock.fileno()] = Inbound(sock)
            if self._loop is not None:
                self._loop.add_reader(sock.fileno(), self._take_turn)
                self._poll_waiting()    # a peer that connects listens: no need to wait for _poll

    def _poll_waiting(self) -> None:
        for peer, out in self._outboxes.items():
            if out.waiting and not out.writing:
                self._write_waiting(peer)

    def _take_turn(self) -> None:
        """Deliver up to DRAIN_FRAMES frames, then let the loop serve the sockets
        before the next ones: a busy peer must not starve this worker's clients.
        Frames read already are not seen by the loop's poll, so a turn that
        stopped early schedules the next."""
        self._drain_scheduled = False
        if not self.drain(DRAIN_FRAMES) and not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._take_turn)

    def drain(self, at_most: int = 0) -> bool:
        """Deliver the frames that have arrived (at most `at_most`, 0: all);
        True when the inbox is empty."""
        if self._closed:
            return True
        if self._loop is None:
            self._accept()
        on_frame = self._on_frame
        taken = 0
        for fd, conn in list(self._inbound.items()):
            while True:
                if at_most and taken >= at_most:
                    return False
                frame = conn.next_frame()
                if frame is None:
                    if conn.ended:
                        self._drop_inbound(fd, conn)
                    break
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
        return True

    def _drop_inbound(self, fd: int, conn: Inbound) -> None:
        """The peer closed its connection (it stopped or died)."""
        del self._inbound[fd]
        if self._loop is not None:
            self._loop.remove_reader(fd)
        conn.sock.close()

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
        frames = self._soon_frames(peer)
        if frames is None:
            return False
        frames.append(encode_frame(kind, header))
        return True

    def send_soon_item(self, peer: int, kind: bytes, item) -> bool:
        """Send `item` at the end of this loop turn in one frame of `kind` with
        the items of that kind sent to that peer right before it (False: the
        peer is unknown or the bus closed)."""
        if self._loop is None:
            return self.send(peer, kind, {"w": self.worker_id, "i": [item]})
        frames = self._soon_frames(peer)
        if frames is None:
            return False
        last = frames[-1] if frames else None
        if type(last) is _Items and last.kind == kind:
            last.items.append(item)
        else:
            frames.append(_Items(kind, item))
        return True

    def _soon_frames(self, peer: int) -> list | None:
        """The frames for `peer` at the end of this loop turn (None: the peer is
        unknown or the bus closed); its send_later frames join them first."""
        if peer not in self._outboxes or self._closed:
            return None
        frames = self._soon.get(peer)
        if frames is None:
            if not self._soon:
                self._loop.call_soon(self._flush_soon)
            frames = self._soon[peer] = []
        later = self._later.pop(peer, None)
        if later:
            frames += later
        return frames

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
        if out is None or self._closed:
            return
        frames = [encode_frame(frame.kind, {"w": self.worker_id, "i": frame.items})
                  if type(frame) is _Items else frame for frame in frames]
        self._send(peer, out, frames[0] if len(frames) == 1 else encode_frame(BATCH, 0, frames))

    def _send(self, peer: int, out: Outbound, frame: bytes) -> bool:
        if len(out.waiting) >= self._hwm > 0:
            self.frames_dropped += 1
            if peer not in self._full:
                self._full.add(peer)
                log.warning("bus to worker %d full: dropping frames until it drains", peer)
            return False
        try:
            if not out.send(stream_frame(frame)) and not out.writing and self._loop is not None:
                if out.sock is not None:
                    self._wait_for_room(peer, out)
                else:
                    self._arm_poll()
        except OSError as exc:
            raise TransportError(f"bus send to worker {peer}: {exc}") from exc
        self._full.discard(peer)
        self.frames_sent[peer] = self.frames_sent.get(peer, 0) + 1
        return True

    def _wait_for_room(self, peer: int, out: Outbound) -> None:
        out.writing = True
        self._loop.add_writer(out.sock.fileno(), self._write_waiting, peer)

    def _write_waiting(self, peer: int) -> None:
        """The socket to a peer has room, or the peer may listen now: send what
        waits (a peer not listening yet is tried again by _poll)."""
        out = self._outboxes.get(peer)
        if out is None or self._closed:
            return
        if out.writing:
            out.writing = False
            if out.sock is not None:
                self._loop.remove_writer(out.sock.fileno())
        try:
            done = out.write_waiting()
        except OSError as exc:
            log.warning("bus to worker %d: %s", peer, exc)
            return
        if not done:
            if out.sock is not None:
                self._wait_for_room(peer, out)
            else:
                self._arm_poll()

    def broadcast(self, kind: bytes, header, payloads: tuple = (), peers=None) -> None:
        """Send one frame to each of `peers` (default: every other worker)."""
        for peer in self._outboxes if peers is None else peers:
            self.send(peer, kind, header, payloads)

    def reset(self, peer: int) -> None:
        """The peer died: drop the frames still waiting for it and connect again."""
        out = self._outboxes.get(peer)
        if out is None or self._closed:
            return
        self._soon.pop(peer, None)
        self._later.pop(peer, None)
        self._stop_writing(out)
        out.forget()
        out.connect()
        self._full.discard(peer)

    def _stop_writing(self, out: Outbound) -> None:
        if out.writing:
            out.writing = False
            if out.sock is not None and self._loop is not None:
                self._loop.remove_writer(out.sock.fileno())

    def close(self) -> None:
        """Stop; what still waits for a peer gets up to CLOSE_SECONDS to go out."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._later_timer is not None:
            self._later_timer.cancel()
        if self._loop is not None:
            self._loop.remove_reader(self._inbox.fileno())
            for fd in self._inbound:
                self._loop.remove_reader(fd)
        for out in self._outboxes.values():
            self._stop_writing(out)
            out.finish(CLOSE_SECONDS)
        for conn in self._inbound.values():
            conn.sock.close()
        self._inbound.clear()
        self._inbox.close()
