"""The PeerLink: a worker's link to the other workers of its node over the bus.

Owns the peers coming and going (HELLO, SNAP, and what happens when a peer
dies), questions to every live peer and their replies, route deltas and
snapshots (every worker knows which filters every other worker has
subscribers for), node-wide retained changes and counter reports for $SYS.
Messages to and from peers (PUB frames: one item per message and
destination worker, batched per loop turn, fan-out at the destination) are
in `forwarding`, session takeover and moves in `takeover`, durable
acknowledgements in `durability`, flow control across workers in `flow`.

Frame kinds (header is orjson; payloads are raw frames):
  HELLO {w, p}              worker w (pid p) started: drop its old routes, send it ours
  SNAP  {w, p, routes, held, dur}
                            every route filter of worker w with its count, the
                            client ids w holds whose registry shard is the receiver,
                            and whether w holds sessions with disc queues (see DURS)
  ROUTE {w, f, d}           route filter f of worker w changed by d (+1 / -1)
  PUB   {w, b: [item]}      messages to route here; an item is message_header + [share,
                            ack, payload size, to], the payloads follow as one blob (payload
                            frame 0); an item with an ack id (not null) is answered by DUR;
                            `to` is null (route it), [client id, qos, retain, sub ids]
                            for a session that moved here (see takeover), or [worker id]
                            for the sessions taken over here from that dead worker
                            (see orphans)
  DUR   {ok, no}            what the PUBs with these acks wrote here is committed (ok),
                            or was refused (no); one frame per peer and loop turn
  DURS  {w, on}             worker w holds sessions with disc queues (on) or none any
                            more: PUB items to it carry ack ids only while on
  RET   {m}                 a retained message changed (payload frame 0)
  STATS {w, s}              worker w's counters
  CLAIM {w, r, c, clean, d} worker w takes client id c; reply HAND to request r (d: sent
                            to the holder the registry named; else to every worker)
  HAND  {w, r, state}       the claimed session's state (payloads: its messages), or null;
                            state.mv names the move (the old owner forwards until MOVED)
  MOVE  {w, c, from, mv, f} session c moved from worker `from` to w with route filters f:
                            move the route counts over, answer MOVED to `from` and w
  MOVED {w, c, mv}          worker w routes session c to its new owner now (see peer_views)
  HOLDS {w, r, c, d, p}     which of the client ids c do you hold? reply HELD (the
                            shard of c, worker d of process p, is down: see registry)
  HELD  {w, r, held, clean} the ones this worker holds (or is claiming); clean: the
                            times of the fresh REGs it sent for the others (clean_claims)
  REG   {w, r, c, t, k}     worker w now holds client id c (sent to its shard), its
                            registration token t; reply REGD (k: no reply, the shard
                            kicks the previous holder with a CLAIM {w, r, c, clean, d, k}
                            that nobody answers; see registry)
  REGD  {w, r, h, o}        the worker that held it before (null: nobody): claim it there;
                            o: [worker, pid] when that was a worker now dead
  UNREG {w, c: [client id]} the sessions of these client ids ended on worker w
  TAKE  {w, r, c}           may worker w restore these orphans? reply TAKEN
  TAKEN {w, r, granted, clean} the ones nobody live holds; w holds them now; clean: the
                            times of the clean starts that took any of c (clean_claims)
  TOOK  {w, d, f}           worker w took over its share of dead worker d's sessions, with
                            route filters f: move them from d to w; drop d's other routes
                            once every survivor said TOOK (see orphans)
  FULL  {w, c: [filter]}    worker w's subscribers of these route filters have full
                            queues: hold publishers back (see flow)
  ROOM  {w, c: [filter]}    ... they have room again

A dead peer: the node tells every survivor (`peer_down`). The survivor stops
waiting for the peer's answers, takes over the persisted sessions that nobody
holds any more (disc modes, split by crc32 of the client id between the
survivors), and only then drops the dead peer's routes: what its publishers
routed to the dead peer meanwhile goes to the sessions taken over (see
orphans). A CONNECT whose claim finds nobody resumes the session from the store, so a
client can come back on any worker. A dead peer restarted meanwhile is heard
(HELLO and what follows) once that take-over is over: until then its previous
incarnation's routes stand and what is routed to it waits in limbo.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os

from actormq.actors.durability import DurableAcks
from actormq.actors.flow import RemoteFlow
from actormq.actors.forwarding import Forwarding
from actormq.actors.messages import Message
from actormq.actors.orphans import Orphans
from actormq.actors.takeover import Takeover
from actormq.actors.wire import message_from_header, message_header

log = logging.getLogger("actormq.peers")

CLAIM_TIMEOUT = 3.0
STATS_SECONDS = 0.25     # how stale a peer's counters in $SYS may be


class _Request:
    """A question sent to every live peer, waiting for their replies."""

    __slots__ = ("future", "waiting", "replies")

    def __init__(self, future: asyncio.Future, waiting: set[int]) -> None:
        self.future = future
        self.waiting = waiting
        self.replies: list[tuple[dict, list]] = []

    def answered_by(self, peer: int) -> None:
        self.waiting.discard(peer)
        if not self.waiting and not self.future.done():
            self.future.set_result(True)

    def expire(self) -> None:
        if not self.future.done():
            self.future.set_result(False)


class PeerLink:
    """Everything a worker says to and hears from its peers."""

    def __init__(self, broker, run_dir: str) -> None:
        from actormq.transport.bus import Bus
        self.broker = broker
        self.worker_id = broker.worker_id
        self.bus = Bus(run_dir, broker.worker_id, broker.worker_count,
                       broker.config.get("bus.hwm", 100000))
        self.live = set(self.bus.peers)             # peers not known to be dead
        self._pids: dict[int, int] = {}             # the pid each peer said HELLO with
        self._requests: dict[int, _Request] = {}
        self._held_frames: dict[int, list] = {}     # restarted peer -> its frames, held (_on_hello)
        # unique across restarts of this worker: a late reply never meets a new request
        self.ids = itertools.count(os.getpid() << 24)
        self._tasks: set[asyncio.Task] = set()
        self.orphans = Orphans(self)
        self.acks = DurableAcks(broker, self.bus, self.ids)
        self.forwarding = forwarding = Forwarding(self)
        self.takeover = Takeover(self)
        self.flow = RemoteFlow(self)
        takeover = self.takeover
        self.registry = registry = takeover.registry
        self._handlers = {
            b"HELLO": self._on_hello, b"SNAP": self._on_snapshot, b"ROUTE": self._on_route,
            b"PUB": forwarding.on_publish, b"RET": self._on_retained, b"STATS": self._on_stats,
            b"CLAIM": takeover.on_claim, b"HAND": self._on_reply, b"HOLDS": registry.on_holds,
            b"HELD": self._on_reply, b"DUR": self.acks.on_durable, b"MOVE": takeover.on_move,
            b"MOVED": takeover.on_moved, b"REG": registry.on_register, b"REGD": self._on_reply,
            b"REGS": registry.on_fresh_registrations, b"UNREG": registry.on_unregister, b"TAKE": registry.on_take, b"TAKEN": self._on_reply,
            b"FULL": self.flow.on_full, b"ROOM": self.flow.on_room,
            b"TOOK": self.orphans.on_took, b"STALE": registry.on_stale,
            b"DURS": self.acks.on_holding,
        }

    async def start(self) -> None:
        self.broker.peers = self
        self.bus.start(self.broker.loop, self._on_frame)
        self.bus.broadcast(b"HELLO", {"w": self.worker_id, "p": os.getpid()})
        # after the broker restored this worker's sessions at start
        self.broker.loop.call_soon(self.registry.start, self.broker.sessions)
        if self.broker.settings.sys_interval:
            self._spawn(self._report_stats())

    async def met_every_peer(self, timeout: float) -> None:
        """Wait until every other worker said HELLO and sent its SNAP (this worker's
        routes reach it, its routes and held client ids are known here), or `timeout`."""
        loop = self.broker.loop
        deadline = loop.time() + timeout
        everyone = set(self.bus.peers)
        while not (everyone <= self.live and self.registry.ready) and loop.time() < deadline:
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.bus.close()

    def _spawn(self, coroutine) -> None:
        task = self.broker.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_frame(self, kind: bytes, header, payloads: list) -> None:
        if self._held_frames and type(header) is dict and header.get("w") in self._held_frames:
            self._held_frames[header["w"]].append((kind, header, payloads))
            return
        self._handlers[kind](header, payloads)

    def broadcast(self, kind: bytes, header, payloads: tuple = ()) -> None:
        self.bus.broadcast(kind, header, payloads, peers=list(self.live))

    def send_after_messages(self, peer: int | None, kind: bytes, header) -> None:
        """Send a frame to a peer (None: every live peer) behind every message this
        worker routed so far: the PUB batches of this loop turn go first, so the
        peer sees them before it (MOVE, MOVED, TOOK rely on it)."""
        self.forwarding.flush()
        if peer is None:
            self.broadcast(kind, header)
        else:
            self.bus.send(peer, kind, header)

    # -- peers coming and going ----------------------------------------------------

    def _came_up(self, peer: int, pid: int) -> None:
        known = self._pids.get(peer)
        if known is not None and known != pid:
            self._gone(peer)        # restarted before we heard that it died
        self.live.add(peer)
        self._pids[peer] = pid

    def peer_down(self, peer: int, pid: int) -> None:
        """The node saw worker `peer` (process `pid`) die."""
        known = self._pids.get(peer)
        if peer not in self.live or (known is not None and known != pid):
            return      # already handled, or a newer incarnation said HELLO already
        self._gone(peer)

    def _gone(self, peer: int) -> None:
        log.warning("worker %d is gone: taking over its sessions, then dropping its routes", peer)
        self.live.discard(peer)
        # first: from here on a message routed to the peer waits in its limbo, and
        # what follows may route some (a publisher it held back goes on: flow)
        self.orphans.peer_died(peer)
        pid = self._pids.pop(peer, None)
        self.bus.reset(peer)
        self.forwarding.peer_gone(peer)
        self.broker.peer_stats.pop(peer, None)
        for request in list(self._requests.values()):
            request.answered_by(peer)
        self.acks.peer_gone(peer)
        self.takeover.peer_gone(peer)
        self.registry.peer_gone(peer, pid)
        self.flow.peer_gone(peer)
        self._spawn(self.orphans.take_over(peer, pid, sorted(self.live | {self.worker_id})))

    # -- questions to every live peer ------------------------------------------------

    async def ask(self, kind: bytes, header: dict, peers=None,
                  soon: bool = False) -> list[tuple[dict, list]]:
        """Send a request to every live peer (or to these; soon: at the end of the
        loop turn, see bus.send_soon); their replies once all answered, died, or
        CLAIM_TIMEOUT passed."""
        request_id = next(self.ids)
        header = dict(header, w=self.worker_id, r=request_id)
        asked = self.live if peers is None else self.live.intersection(peers)
        send = self.bus.send_soon if soon else self.bus.send
        waiting = {peer for peer in asked if send(peer, kind, header)}
        if not waiting:
            return []
        loop = self.broker.loop
        request = _Request(loop.create_future(), waiting)
        self._requests[request_id] = request
        # a timer rather than asyncio.wait_for: no task per question (measured:
        # connections/s at -w 2, where half the CONNECTs ask their registry shard)
        timer = loop.call_later(CLAIM_TIMEOUT, request.expire)
        try:
            if not await request.future:
                log.warning("%s: workers %s did not answer in %.0f s", kind.decode(),
                            sorted(request.waiting), CLAIM_TIMEOUT)
        finally:
            timer.cancel()
            del self._requests[request_id]
        return request.replies

    def _on_reply(self, header, payloads) -> None:
        request = self._requests.get(header["r"])
        if request is not None:
            request.replies.append((header, payloads))
            request.answered_by(header["w"])

    # -- routes ------------------------------------------------------------------

    def route_changed(self, route_filter: str, delta: int) -> None:
        self.broadcast(b"ROUTE", {"w": self.worker_id, "f": route_filter, "d": delta})

    def _on_hello(self, header, payloads) -> None:
        peer = header["w"]
        known = self._pids.get(peer)
        if known is not None and known != header["p"]:
            self._gone(peer)        # restarted before we heard that it died
        taking = self.orphans.taking.get(peer)
        if taking is not None:
            # its previous incarnation's sessions are being taken over: until that is
            # over, its routes lead to them and what is routed to it waits in limbo
            self._held_frames[peer] = [(b"HELLO", header, payloads)]
            self._spawn(self._hear_restarted(peer, taking))
            return
        self._came_up(peer, header["p"])
        router = self.broker.router
        router.drop_worker_routes(peer)
        self.acks.asking.discard(peer)      # a new incarnation says DURS when it holds some
        self.broker.peer_stats.pop(peer, None)
        held = self.registry.held_for(peer, self.takeover.held())
        self.bus.send(peer, b"SNAP", {"w": self.worker_id, "p": os.getpid(),
                                      "routes": self.takeover.own_routes(router.local_filters(), peer),
                                      "held": held, "dur": self.acks.holding})
        if self.worker_id == min((self.live - {peer}) | {self.worker_id}):
            for message in self.broker.retained.snapshot():
                self.bus.send(peer, b"RET", {"m": message_header(message)}, (message.payload,))

    async def _hear_restarted(self, peer: int, taking: asyncio.Event) -> None:
        """Take the frames of a restarted peer, in order, once the take-over of its
        previous incarnation is over."""
        await taking.wait()
        for kind, header, payloads in self._held_frames.pop(peer, ()):
            self._handlers[kind](header, payloads)

    def _on_snapshot(self, header, _payloads) -> None:
        peer = header["w"]
        self._came_up(peer, header["p"])
        router = self.broker.router
        router.drop_worker_routes(peer)
        self.acks.on_holding({"w": peer, "on": header.get("dur", True)}, ())
        for route_filter, count in header["routes"].items():
            for _ in range(count):
                router.add_remote_route(peer, route_filter)
        self.registry.on_snapshot(peer, header.get("held", ()))

    def _on_route(self, header, _payloads) -> None:
        if header["d"] > 0:
            self.broker.router.add_remote_route(header["w"], header["f"])
        else:
            self.broker.router.remove_remote_route(header["w"], header["f"])

    # -- retained messages -------------------------------------------------------------

    def retained_changed(self, message: Message) -> None:
        self.broadcast(b"RET", {"m": message_header(message)}, (message.payload,))

    def _on_retained(self, header, payloads) -> None:
        self.broker.retained.retain(message_from_header(header["m"], payloads[0]), persist=False)

    # -- counters ------------------------------------------------------------------------

    async def _report_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_SECONDS)
            self.broadcast(b"STATS", {"w": self.worker_id, "s": self.broker.local_stats()})

    def _on_stats(self, header, _payloads) -> None:
        if header["w"] in self.live:
            self.broker.peer_stats[header["w"]] = header["s"]

    # -- session takeover -------------------------------------------------------------------

    def claim_at_once(self, client_id: str, clean_start: bool, fresh: bool) -> bool:
        return self.takeover.claim_at_once(client_id, clean_start, fresh)

    async def claim(self, client_id: str, clean_start: bool) -> None:
        await self.takeover.claim(client_id, clean_start)

    def claim_done(self, client_id: str) -> None:
        self.takeover.claim_done(client_id)

    def session_ended(self, client_id: str) -> None:
        self.registry.released(client_id)
