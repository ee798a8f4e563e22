"""The PeerLink: a worker's link to the other workers of its node over the bus.

Owns what crosses processes: route deltas and snapshots (every worker knows
which filters every other worker has subscribers for), messages routed to a
peer (one item per message and destination worker, batched per loop turn:
fan-out happens at the destination), node-wide retained changes, counter
reports for $SYS, session takeover (claim / handover) so that a client id
has exactly one live session in the node, and what happens when a peer dies.

Frame kinds (header is orjson; payloads are raw frames):
  HELLO {w, p}              worker w (pid p) started: drop its old routes, send it ours
  SNAP  {w, p, routes}      every route filter of worker w with its count
  ROUTE {w, f, d}           route filter f of worker w changed by d (+1 / -1)
  PUB   {w, b: [item]}      messages to route here; an item is message_header + [share,
                            ack, payload size], the payloads follow as one blob (payload
                            frame 0); an item with an ack id (not null) is answered by DUR
  DUR   {ok, no}            what the PUBs with these acks wrote here is committed (ok),
                            or was refused (no); one frame per peer and loop turn
  RET   {m}                 a retained message changed (payload frame 0)
  STATS {w, s}              worker w's counters
  CLAIM {w, r, c, clean}    worker w takes client id c; reply HAND to request r
  HAND  {w, r, state}       the claimed session's state (payloads: its messages), or null
  HOLDS {w, r, c}           which of the client ids c do you hold? reply HELD
  HELD  {w, r, held}        the ones this worker holds (or is claiming)

A dead peer: the node tells every survivor (`peer_down`). The survivor drops
the peer's routes and what its outbox still queued for it, stops waiting for
its answers, and takes over the persisted sessions that nobody holds any
more (disc modes), so they keep queueing while their clients are away; the
survivors split them by crc32 of the client id. A CONNECT whose claim finds
nobody resumes the session from the store (the claim tells the others to
leave it alone), so a client can come back on any worker.

Durability across workers: a QoS 1/2 message routed to a peer in a disc
mode asks for DUR; `when_durable` (what the publisher's session waits on
before its PUBACK/PUBREC) runs once this worker's store and every such peer
committed, in the order it was called, so acknowledgements stay in order.
A peer that dies before it answered fails the wait.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import deque
from functools import partial
from zlib import crc32

from actormq.actors.messages import Delivery, Message, SubOptions
from actormq.errors import StorageError

log = logging.getLogger("actormq.peers")

MAX_BATCH = 512
ACK = 9         # where a PUB item has its ack id: message_header + [share, ack, size]
CLAIM_TIMEOUT = 3.0
STATS_SECONDS = 0.25     # how stale a peer's counters in $SYS may be
MAX_UNCLAIMED = 1000


def message_header(message: Message) -> list:
    """The message without its payload, for an orjson header. Binary property
    values (correlation data) go as latin-1 text, which maps byte for byte."""
    props = message.properties
    binary = ()
    if props:
        binary = [name for name, value in props.items() if type(value) is bytes]
        if binary:
            props = {name: value.decode("latin-1") if name in binary else value
                     for name, value in props.items()}
    return [message.topic_name, message.qos, message.retain, props,
            message.expires_at, message.timestamp, message.origin, binary]


def message_from_header(header: list, payload: bytes) -> Message:
    topic, qos, retain, props, expires_at, timestamp, origin, binary = header
    if props:
        props_from_json(props, binary)
    return Message(topic, bytes(payload), qos, retain, props, expires_at, timestamp, origin)


def props_from_json(props: dict, binary: list) -> None:
    """Undo what JSON did to the properties of message_header (in place)."""
    for name in binary:
        props[name] = props[name].encode("latin-1")
    if "user_property" in props:
        props["user_property"] = [tuple(pair) for pair in props["user_property"]]


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
            self.future.set_result(None)


class _Durable:
    """One `when_durable` call: what it waits for, and what to run then."""

    __slots__ = ("callback", "on_error", "waiting", "failed")

    def __init__(self, callback, on_error) -> None:
        self.callback = callback
        self.on_error = on_error
        self.waiting = 1            # this worker's store
        self.failed = False

    def run(self) -> None:
        if not self.failed:
            self.callback()
        elif self.on_error is not None:
            self.on_error(StorageError("a worker the message went to could not save it"))
        else:
            log.warning("a message routed to another worker may not have been saved")


class PeerLink:
    """Everything a worker says to and hears from its peers."""

    def __init__(self, broker, run_dir: str) -> None:
        from actormq.transport.bus import Bus
        self.broker = broker
        self.worker_id = broker.worker_id
        self.bus = Bus(run_dir, broker.worker_id, broker.worker_count,
                       broker.config.get("bus.hwm", 100000))
        self._live = set(self.bus.peers)            # peers not known to be dead
        self._pids: dict[int, int] = {}             # the pid each peer said HELLO with
        self._requests: dict[int, _Request] = {}
        # unique across restarts of this worker: a late reply never meets a new request
        self._request_ids = itertools.count(os.getpid() << 24)
        self._claiming: dict[str, int] = {}         # client id -> CONNECTs claiming it here
        self._deferred: dict[str, list] = {}        # client id -> peers' CLAIMs held (_on_claim)
        self._yielded: set[str] = set()             # claiming, and answered a lower peer's CLAIM
        self._restoring: set[str] = set()           # orphans this worker is about to restore
        self._tasks: set[asyncio.Task] = set()
        self._wants_durable = broker.stores is not None and \
            broker.config.get("queue.storage", "ram") != "ram"
        self._durable_waits: dict[int, list] = {}   # PUB ack id -> [peer, _Durable or None]
        self._unclaimed: list[int] = []             # ack ids of the current publish
        self._durable_order: deque[_Durable] = deque()
        self._outgoing: dict[int, tuple[list, list]] = {}
        self._flush_scheduled = False
        self._confirms: dict[int, tuple[list, list]] = {}   # peer -> (ack ids ok, refused)
        self._handlers = {
            b"HELLO": self._on_hello, b"SNAP": self._on_snapshot, b"ROUTE": self._on_route,
            b"PUB": self._on_publish, b"RET": self._on_retained, b"STATS": self._on_stats,
            b"CLAIM": self._on_claim, b"HAND": self._on_reply, b"HOLDS": self._on_holds,
            b"HELD": self._on_reply, b"DUR": self._on_durable,
        }

    async def start(self) -> None:
        self.broker.peers = self
        self.bus.start(self.broker.loop, self._on_frame)
        self.bus.broadcast(b"HELLO", {"w": self.worker_id, "p": os.getpid()})
        if self.broker.settings.sys_interval:
            self._spawn(self._report_stats())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.bus.close()

    def _spawn(self, coroutine) -> None:
        task = self.broker.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_frame(self, kind: bytes, header, payloads: list) -> None:
        self._handlers[kind](header, payloads)

    def _broadcast(self, kind: bytes, header, payloads: tuple = ()) -> None:
        self.bus.broadcast(kind, header, payloads, peers=list(self._live))

    # -- peers coming and going ----------------------------------------------------

    def _came_up(self, peer: int, pid: int) -> None:
        known = self._pids.get(peer)
        if known is not None and known != pid:
            self._gone(peer)        # restarted before we heard that it died
        self._live.add(peer)
        self._pids[peer] = pid

    def peer_down(self, peer: int, pid: int) -> None:
        """The node saw worker `peer` (process `pid`) die."""
        known = self._pids.get(peer)
        if peer not in self._live or (known is not None and known != pid):
            return      # already handled, or a newer incarnation said HELLO already
        self._gone(peer)

    def _gone(self, peer: int) -> None:
        log.warning("worker %d is gone: dropping its routes, taking over its sessions", peer)
        self._live.discard(peer)
        self._pids.pop(peer, None)
        self.bus.reset(peer)
        self._outgoing.pop(peer, None)
        self.broker.router.drop_worker_routes(peer)
        self.broker.peer_stats.pop(peer, None)
        for request in list(self._requests.values()):
            request.answered_by(peer)
        for client_id, held in list(self._deferred.items()):
            held[:] = [header for header in held if header["w"] != peer]
            if not held:
                del self._deferred[client_id]
        for ack_id, (owner, _entry) in list(self._durable_waits.items()):
            if owner == peer:
                self._settle_ack(ack_id, False)
        self._spawn(self._restore_orphans(sorted(self._live | {self.worker_id})))

    async def _restore_orphans(self, owners: list[int]) -> None:
        """Restore the persisted sessions no live worker holds; `owners` share them."""
        broker = self.broker
        busy = broker.sessions.keys() | self._claiming.keys()
        candidates = [r.client_id for r in broker.stored_sessions() if r.client_id not in busy]
        if not candidates:
            return
        self._restoring.update(candidates)
        replies = await self._ask(b"HOLDS", {"c": candidates})
        held = {client_id for header, _ in replies for client_id in header["held"]}
        rank = owners.index(self.worker_id)
        restored = 0
        for client_id in candidates:
            if client_id not in self._restoring:
                continue        # a CONNECT claimed it meanwhile
            self._restoring.discard(client_id)
            if client_id in held or client_id in broker.sessions \
                    or crc32(client_id.encode()) % len(owners) != rank:
                continue
            record = broker.stored_session(client_id)
            if record is not None and broker.restore_session(record) is not None:
                restored += 1
        if restored:
            log.info("took over %d persistent sessions of a dead worker", restored)

    def _on_holds(self, header, _payloads) -> None:
        sessions = self.broker.sessions
        held = [c for c in header["c"] if c in sessions or c in self._claiming]
        self.bus.send(header["w"], b"HELD", {"w": self.worker_id, "r": header["r"], "held": held})

    # -- questions to every live peer ------------------------------------------------

    async def _ask(self, kind: bytes, header: dict) -> list[tuple[dict, list]]:
        """Send a request to every live peer; their replies once all answered,
        died, or CLAIM_TIMEOUT passed."""
        request_id = next(self._request_ids)
        header = dict(header, w=self.worker_id, r=request_id)
        waiting = {peer for peer in self._live if self.bus.send(peer, kind, header)}
        if not waiting:
            return []
        request = _Request(self.broker.loop.create_future(), waiting)
        self._requests[request_id] = request
        try:
            await asyncio.wait_for(request.future, CLAIM_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("%s: workers %s did not answer in %.0f s", kind.decode(),
                        sorted(request.waiting), CLAIM_TIMEOUT)
        finally:
            del self._requests[request_id]
        return request.replies

    def _on_reply(self, header, payloads) -> None:
        request = self._requests.get(header["r"])
        if request is not None:
            request.replies.append((header, payloads))
            request.answered_by(header["w"])

    # -- routes ------------------------------------------------------------------

    def route_changed(self, route_filter: str, delta: int) -> None:
        self._broadcast(b"ROUTE", {"w": self.worker_id, "f": route_filter, "d": delta})

    def _on_hello(self, header, _payloads) -> None:
        peer = header["w"]
        self._came_up(peer, header["p"])
        router = self.broker.router
        router.drop_worker_routes(peer)
        self.broker.peer_stats.pop(peer, None)
        self.bus.send(peer, b"SNAP", {"w": self.worker_id, "p": os.getpid(),
                                      "routes": router.local_filters()})
        if self.worker_id == min((self._live - {peer}) | {self.worker_id}):
            for message in self.broker.retained.snapshot():
                self.bus.send(peer, b"RET", {"m": message_header(message)}, (message.payload,))

    def _on_snapshot(self, header, _payloads) -> None:
        peer = header["w"]
        self._came_up(peer, header["p"])
        router = self.broker.router
        router.drop_worker_routes(peer)
        for route_filter, count in header["routes"].items():
            for _ in range(count):
                router.add_remote_route(peer, route_filter)

    def _on_route(self, header, _payloads) -> None:
        if header["d"] > 0:
            self.broker.router.add_remote_route(header["w"], header["f"])
        else:
            self.broker.router.remove_remote_route(header["w"], header["f"])

    # -- messages ---------------------------------------------------------------------

    def send_message(self, worker_id: int, message: Message, share_target) -> None:
        """Queue a message for a peer; everything queued in one loop turn goes in
        one PUB frame per peer (measured: -w 2 QoS 0 fan-in, see the README)."""
        broker = self.broker
        broker.stats.bus_publish_frames += 1
        ack_id = self._ack_for(worker_id) if message.qos and self._wants_durable else None
        item = message_header(message)
        item += (share_target, ack_id, len(message.payload))
        batch = self._outgoing.get(worker_id)
        if batch is None:
            batch = self._outgoing[worker_id] = ([], [])
            if not self._flush_scheduled:
                self._flush_scheduled = True
                broker.loop.call_soon(self._flush_outgoing)
        batch[0].append(item)
        batch[1].append(message.payload)
        if len(batch[0]) >= MAX_BATCH:
            del self._outgoing[worker_id]
            self._send_batch(worker_id, *batch)

    def _flush_outgoing(self) -> None:
        self._flush_scheduled = False
        outgoing, self._outgoing = self._outgoing, {}
        for worker_id, (items, payloads) in outgoing.items():
            self._send_batch(worker_id, items, payloads)

    def _send_batch(self, worker_id: int, items: list, payloads: list) -> None:
        """One frame: the items as one orjson list, the payloads as one blob."""
        if not self.bus.send(worker_id, b"PUB", {"w": self.worker_id, "b": items},
                             (b"".join(payloads),)):
            for item in items:
                if item[ACK] is not None:
                    self._settle_ack(item[ACK], False)

    def _ack_for(self, worker_id: int) -> int:
        """A DUR the publisher's acknowledgement waits for (see when_durable)."""
        broker = self.broker
        if not broker.wrote_durable or len(self._unclaimed) > MAX_UNCLAIMED:
            self._unclaimed.clear()     # left over from a publish nobody acknowledges (a will)
        broker.wrote_durable = True
        ack_id = next(self._request_ids)
        self._durable_waits[ack_id] = [worker_id, None]
        self._unclaimed.append(ack_id)
        return ack_id

    def _on_publish(self, batch, payloads) -> None:
        blob = payloads[0]
        at = 0
        broker = self.broker
        route = broker.router.route
        for topic, qos, retain, props, expires_at, timestamp, origin, binary, share, ack_id, size \
                in batch["b"]:
            if props:
                props_from_json(props, binary)
            message = Message(topic, blob[at:at + size], qos, retain, props, expires_at, timestamp,
                              origin)
            at += size
            broker.wrote_durable = False
            broker.quota_exceeded = False
            route(message, from_peer=True, share_target=tuple(share) if share is not None else None)
            if ack_id is not None:
                self._confirm(batch["w"], ack_id)
        broker.congested.clear()    # backpressure holds back local publishers only

    def _confirm(self, peer: int, ack_id: int) -> None:
        """Tell the publisher's worker once what this message wrote here is committed."""
        broker = self.broker
        if broker.quota_exceeded or not broker.wrote_durable or broker.stores is None:
            self._queue_confirm(peer, ack_id, not broker.quota_exceeded)
            return
        confirm = self._queue_confirm
        broker.stores.queue.when_durable(partial(confirm, peer, ack_id, True),
                                         lambda _error: confirm(peer, ack_id, False), broker.loop)

    def _queue_confirm(self, peer: int, ack_id: int, ok: bool) -> None:
        if not self._confirms:
            self.broker.loop.call_soon(self._flush_confirms)
        lists = self._confirms.get(peer)
        if lists is None:
            lists = self._confirms[peer] = ([], [])
        lists[0 if ok else 1].append(ack_id)

    def _flush_confirms(self) -> None:
        confirms, self._confirms = self._confirms, {}
        for peer, (ok, refused) in confirms.items():
            self.bus.send(peer, b"DUR", {"ok": ok, "no": refused})

    def when_durable(self, callback, on_error=None) -> None:
        """Run callback once what the current publish wrote is committed, here and on
        every worker it went to; on_error(StorageError) instead when a part failed.
        Callbacks run in the order of the calls."""
        entry = _Durable(callback, on_error)
        for ack_id in self._unclaimed:
            wait = self._durable_waits.get(ack_id)
            if wait is not None and wait[1] is None:
                wait[1] = entry
                entry.waiting += 1
        self._unclaimed.clear()
        self._durable_order.append(entry)
        stores = self.broker.stores
        if stores is None:
            self._settle(entry, True)
            return
        stores.queue.when_durable(partial(self._settle, entry, True),
                                  lambda _error: self._settle(entry, False), self.broker.loop)

    def _on_durable(self, header, _payloads) -> None:
        for ack_id in header["ok"]:
            self._settle_ack(ack_id, True)
        for ack_id in header["no"]:
            self._settle_ack(ack_id, False)

    def _settle_ack(self, ack_id: int, ok: bool) -> None:
        wait = self._durable_waits.pop(ack_id, None)
        if wait is not None and wait[1] is not None:
            self._settle(wait[1], ok)

    def _settle(self, entry: _Durable, ok: bool) -> None:
        entry.waiting -= 1
        entry.failed = entry.failed or not ok
        order = self._durable_order
        while order and order[0].waiting <= 0:
            order.popleft().run()

    def retained_changed(self, message: Message) -> None:
        self._broadcast(b"RET", {"m": message_header(message)}, (message.payload,))

    def _on_retained(self, header, payloads) -> None:
        self.broker.retained.retain(message_from_header(header["m"], payloads[0]), persist=False)

    # -- counters ------------------------------------------------------------------------

    async def _report_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_SECONDS)
            self._broadcast(b"STATS", {"w": self.worker_id, "s": self.broker.local_stats()})

    def _on_stats(self, header, _payloads) -> None:
        if header["w"] in self._live:
            self.broker.peer_stats[header["w"]] = header["s"]

    # -- session takeover -------------------------------------------------------------------

    async def claim(self, client_id: str, clean_start: bool) -> None:
        """Take the client id from whichever peer has it and adopt its state, or
        resume it from the store when nobody holds it; clean_start discards it.

        The caller opens its session right after and then calls `claim_done`:
        until then, a CLAIM for the same client id from a peer with a higher
        worker id waits here (see `_on_claim`)."""
        self._restoring.discard(client_id)
        self._claiming[client_id] = self._claiming.get(client_id, 0) + 1
        handed: list = []
        while True:
            self._yielded.discard(client_id)
            replies = await self._ask(b"CLAIM", {"c": client_id, "clean": clean_start})
            handed += [(header["state"], payloads) for header, payloads in replies
                       if header["state"] is not None]
            if client_id not in self._yielded:
                break
            # a lower worker's claim was answered meanwhile: it opens a session
            # too, so claim again to take that one over
        self._adopt(client_id, clean_start, handed[-1:])

    def claim_done(self, client_id: str) -> None:
        """The CONNECT that claimed `client_id` opened its session (or gave up):
        answer the CLAIMs that waited for it, which hand the session on."""
        left = self._claiming.pop(client_id, 1) - 1
        if left:
            self._claiming[client_id] = left
            return
        for header in self._deferred.pop(client_id, ()):
            self._on_claim(header, ())

    def _adopt(self, client_id: str, clean_start: bool, handed: list) -> None:
        broker = self.broker
        if client_id in broker.sessions:
            return
        if handed:
            if not clean_start:
                import_session(broker, *handed[0])
        elif clean_start:
            broker.discard_stored_session(client_id)
        else:
            record = broker.stored_session(client_id)
            if record is not None and broker.restore_session(record) is not None:
                log.info("client %s: session resumed from the store", client_id)

    def _on_claim(self, header, _payloads) -> None:
        """A peer's CONNECT claims the client id: hand over or end the session here.

        Two CONNECTs for one client id on two workers claim at the same time;
        if both answered at once, both would open a session. So the lower
        worker holds the higher one's CLAIM until its own session is open
        (claim_done), then hands that session over; the higher worker answers
        at once and claims again once its own round is over, since the lower
        one may have heard nothing yet when it answered. Exactly one session
        remains."""
        broker = self.broker
        client_id = header["c"]
        if client_id in self._claiming:
            if self.worker_id < header["w"]:
                self._deferred.setdefault(client_id, []).append(header)
                return
            self._yielded.add(client_id)
        self._restoring.discard(client_id)
        session = broker.sessions.get(client_id)
        reply = {"w": self.worker_id, "r": header["r"], "state": None}
        payloads: list = []
        if session is not None and session.conn is not None:
            log.info("client %s: taken over by worker %d", client_id, header["w"])
            session.conn.taken_over()
            session.detach(publish_will=True)
            session = broker.sessions.get(client_id)
        if session is None and header["clean"]:
            # nothing to hand, and a clean start never reads the store: no commit to wait for
            self.bus.send(header["w"], b"HAND", reply)
            return
        if session is not None:
            if header["clean"]:
                broker.end_session(session)
            else:
                reply["state"], payloads = export_session(session)
                broker.release_session(session)
        self._reply_when_durable(header["w"], b"HAND", reply, tuple(payloads))

    def _reply_when_durable(self, peer: int, kind: bytes, header: dict, payloads: tuple) -> None:
        """Reply once what this worker wrote is committed: the claimer reads the store next."""
        stores = self.broker.stores
        if stores is None:
            self.bus.send(peer, kind, header, payloads)
            return
        loop = self.broker.loop
        stores.queue.when_durable(
            lambda: loop.call_soon_threadsafe(self.bus.send, peer, kind, header, payloads))


def export_session(session) -> tuple[dict, list]:
    """A session's state as a HAND header and its message payload frames.
    Persisted queue rows stay in LMDB: only their in-flight packet ids travel."""
    payloads: list[bytes] = []
    persisted = session.queue.persistent

    def entry(delivery: Delivery) -> list:
        payloads.append(delivery.message.payload)
        return [message_header(delivery.message), delivery.qos, delivery.retain,
                list(delivery.subscription_ids), delivery.seq]

    inflight = []
    for packet_id, delivery in session.inflight_items():
        stored = persisted and delivery.seq and delivery.qos > 0
        inflight.append([packet_id, delivery.seq if stored else entry(delivery)])
    queued = [entry(d) for d in session.queue.snapshot()
              if not (persisted and d.qos > 0)]
    state = {
        "client_id": session.client_id, "version": session.version,
        "expiry": session.expiry_interval, "persisted": persisted,
        "subs": {f: o.as_record() for f, o in session.subscriptions.items()},
        "next_pid": session.next_packet_id, "qos2_in": sorted(session.qos2_in),
        "pubcomp": sorted(session.awaiting_pubcomp), "inflight": inflight, "queued": queued,
    }
    return state, payloads


def import_session(broker, state: dict, payloads: list) -> None:
    """Recreate a handed-over session on this worker (offline, ready to attach)."""
    remaining = iter(payloads)

    def next_delivery(entry: list) -> Delivery:
        header, qos, retain, sub_ids, seq = entry
        return Delivery(message_from_header(header, next(remaining)), qos, retain,
                        tuple(sub_ids), seq)

    session = broker.new_session(state["client_id"], state["version"], state["expiry"])
    session.restore_subscriptions({f: SubOptions.from_record(o) for f, o in state["subs"].items()})
    stored_inflight = {}
    inflight = {}
    for packet_id, ref in state["inflight"]:
        if isinstance(ref, list):
            inflight[packet_id] = next_delivery(ref)
        else:
            stored_inflight[ref] = packet_id
    if state["persisted"] and session.queue.persistent:
        broker.stores.queue.invalidate("queue", session.queue.prefix)
        session.queue.load()
        for d in session.queue.extract(set(stored_inflight)):
            inflight[stored_inflight[d.seq]] = d
    for entry in state["queued"]:
        session.queue.enqueue(next_delivery(entry))
    session.restore_inflight(inflight, state["next_pid"], state["qos2_in"], state["pubcomp"])
    session.disconnected_at = None
