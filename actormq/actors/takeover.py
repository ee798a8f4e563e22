"""Takeover: which worker of the node holds a client id's session, and how a
session moves from one worker to another without a message routed to nobody.

Claims: a CONNECT claims its client id from the other workers (CLAIM); the
worker that holds the session hands it over (HAND, with its state) or ends it
(clean start). Two CONNECTs for one id on two workers at once leave one
session (see `_on_claim`). A dead worker's persisted sessions are taken over
by the survivors (HOLDS/HELD, then a crc32 split).

A hand-over without a gap: the old owner keeps the session's routes and
turns it into a Forwarder, which sends every message for it on to the new
owner (one targeted PUB item). The new owner takes what arrives before its
import is done aside (parked) and delivers it right after. Once imported, it
tells every worker with MOVE that the session's routes are now its own; each
moves the route counts over in one step and answers the old and the new
owner MOVED (after it, nothing it sent on the old route can still be on its
way, the bus being FIFO between two workers). When every live worker
answered, the old owner drops the Forwarder and its routes. Until a worker
answered, its plain messages for other subscribers on the new owner skip the
session there: the old owner forwards them (peer_views). The session moves on
only once every live worker answered its last move: a third worker would get
the two MOVEs from two workers, in either order. So routes for a persistent
session exist from its first SUBSCRIBE until it ends, wherever it is held.
"""

from __future__ import annotations

import logging
from zlib import crc32

from actormq.actors import routed
from actormq.actors.clean_claims import discarded
from actormq.actors.messages import Delivery, SubOptions
from actormq.actors.peer_views import PeerViews
from actormq.actors.registry import BROADCAST, Registry
from actormq.actors.wire import message_from_header, message_header
from actormq.transport.topics import parse_shared

log = logging.getLogger("actormq.peers")


class Forwarder:
    """Where the messages of a session that moved away go until every worker
    routes them to its new owner. Takes deliveries as a Session does."""

    __slots__ = ("takeover", "client_id", "to", "move_id", "filters", "moved", "acked")
    online = False

    def __init__(self, takeover, client_id: str, to: int, move_id: int, filters: list) -> None:
        self.takeover = takeover
        self.client_id = client_id
        self.to = to
        self.move_id = move_id
        self.filters = filters
        self.moved = False          # the new owner's MOVE arrived: local publishers route there
        self.acked: set[int] = set()

    def deliver(self, message, qos: int, retain: bool, sub_ids: tuple, _encoded: dict):
        """Send the delivery on; a note with the new owner's ack id (see routed)."""
        ack_id = self.takeover.link.forwarding.send_message(self.to, message, None,
                                                 [self.client_id, qos, retain, list(sub_ids)])
        return None if ack_id is None else routed.awaiting(ack_id)


class Takeover:
    """The claims, hand-overs and moves of one worker's sessions."""

    def __init__(self, link) -> None:
        self.link = link
        self.broker = link.broker
        self.worker_id = link.worker_id
        self.forwarders: dict[str, Forwarder] = self.broker.forwarders
        self._claiming: dict[str, int] = {}         # client id -> CONNECTs claiming it here
        self._deferred: dict[str, list] = {}        # client id -> peers' CLAIMs held (_on_claim)
        self._yielded: set[str] = set()             # claiming, and answered a lower peer's CLAIM
        self._restoring: set[str] = set()           # orphans this worker is about to restore
        self._parked: dict[str, list] = {}          # client id -> messages that came before it
        self._next_move: dict[str, list] = {}       # client id -> CLAIMs waiting for its MOVEDs
        self.registry = Registry(link)
        self.views = PeerViews()

    def is_held(self, client_id: str) -> bool:
        return client_id in self.broker.sessions or client_id in self._claiming

    def held(self) -> set[str]:
        return self.broker.sessions.keys() | self._claiming.keys()

    # -- claims ----------------------------------------------------------------------

    def claim_at_once(self, client_id: str, clean_start: bool, fresh: bool) -> bool:
        """Claim without a round trip when the answer is known here (this worker
        is the registry shard of the client id and no other worker holds it, no
        take-over is under way: half the CONNECTs at -w 2), or when nothing can
        be taken over (`fresh`: clean start, a session that is not persistent;
        the registry kicks the previous holder, see registry). False: `claim`."""
        if self.link.orphans.taking or client_id in self._claiming:
            return False
        registry = self.registry
        # Nobody held the id (the shard is here and has no entry, or it is
        # elsewhere and says STALE when it had one): a clean start finds no
        # stored session nobody holds, and need not read the store for one.
        unheld = client_id not in registry.holders
        if not registry.register_at_once(client_id, fresh):
            return False
        self._restoring.discard(client_id)
        self._adopt(client_id, clean_start, [], None, unheld)
        return True

    async def claim(self, client_id: str, clean_start: bool) -> None:
        """Take the client id from whichever peer has it and adopt its state, or
        resume it from the store when nobody holds it; clean_start discards it.

        The caller opens its session right after and then calls `claim_done`:
        until then, a CLAIM for the same client id from a peer with a higher
        worker id waits here (see `_on_claim`). A take-over of a worker that
        dies meanwhile waits until the claims under way here are resolved (see
        orphans.adopt)."""
        orphans = self.link.orphans
        if orphans.taking:
            await orphans.settled()
        self._restoring.discard(client_id)
        self._claiming[client_id] = self._claiming.get(client_id, 0) + 1
        orphans.claim_started()
        try:
            await self._claim(client_id, clean_start)
        finally:
            orphans.claim_resolved()
        self._unpark(client_id)

    async def _claim(self, client_id: str, clean_start: bool) -> None:
        holder, dead = await self.registry.register(client_id)
        if dead is not None:
            # the shard saw the holder die: this worker may not have heard yet
            self.link.peer_down(*dead)
        handed: list = []
        if holder != BROADCAST:
            if holder is not None:
                replies = await self.link.ask(b"CLAIM", {"c": client_id, "clean": clean_start,
                                                         "d": True}, peers=(holder,))
                handed = [(header["w"], header["state"], payloads) for header, payloads in replies
                          if header["state"] is not None]
            self._adopt(client_id, clean_start, handed, dead[0] if dead else holder)
            return
        while True:
            self._yielded.discard(client_id)
            replies = await self.link.ask(b"CLAIM", {"c": client_id, "clean": clean_start})
            handed += [(header["w"], header["state"], payloads) for header, payloads in replies
                       if header["state"] is not None]
            if client_id not in self._yielded:
                break
            # a lower worker's claim was answered meanwhile: it opens a session
            # too, so claim again to take that one over
        self._adopt(client_id, clean_start, handed[-1:], self.registry.shard(client_id))

    def claim_done(self, client_id: str) -> None:
        """The CONNECT that claimed `client_id` opened its session (or gave up):
        answer the CLAIMs that waited for it, which hand the session on."""
        left = self._claiming.pop(client_id, 1) - 1
        if left:
            self._claiming[client_id] = left
            return
        self._unpark(client_id)
        for header in self._deferred.pop(client_id, ()):
            self.on_claim(header, ())

    def _adopt(self, client_id: str, clean_start: bool, handed: list,
               holder: int | None, unheld: bool = False) -> None:
        """Open the claimed session here: handed over, or resumed from the store —
        as part of the take-over of `holder` when that worker died meanwhile.
        `unheld`: the registry knows nobody held the id (nothing to discard)."""
        broker = self.broker
        if client_id in broker.sessions:
            return
        if handed:
            if not clean_start:
                self._import(*handed[0])
        elif clean_start:
            if not unheld:
                broker.discard_stored_session(client_id)
        else:
            if broker.stores is not None:
                broker.stores.recover_logs()    # its holder may have died with writes in its log
            record = broker.stored_session(client_id)
            if record is None or self.link.orphans.adopt(record, holder):
                return
            if broker.restore_session(record) is not None:
                log.info("client %s: session resumed from the store", client_id)

    def on_claim(self, header, _payloads) -> None:
        """A peer's CONNECT claims the client id: hand over or end the session here.

        A claim directed here by the registry (`d`) that finds this worker
        claiming the id itself waits until its session is open: the registry
        ordered this worker's claim first. When the shard was down, claims go
        to every worker and this rule applies instead: two CONNECTs for one client id on two workers claim at the same time;
        if both answered at once, both would open a session. So the lower
        worker holds the higher one's CLAIM until its own session is open
        (claim_done), then hands that session over; the higher worker answers
        at once and claims again once its own round is over, since the lower
        one may have heard nothing yet when it answered. Exactly one session
        remains. A session taken over from a dead worker is handed on once
        the take-over delivered its limbo (orphans.hold_claim)."""
        broker = self.broker
        client_id = header["c"]
        if self.link.orphans.hold_claim(client_id, header):
            return
        if client_id in self._claiming:
            if header.get("d") or self.worker_id < header["w"]:
                self._deferred.setdefault(client_id, []).append(header)
                return
            self._yielded.add(client_id)
        self._restoring.discard(client_id)
        if "k" in header:   # the registry's kick: a later registration won, nobody waits
            if self.registry.kicks(client_id, header["k"]):
                session = self._taken_over(client_id, header["w"])
                if session is not None:
                    broker.end_session(session, "discarded")
            return
        if not header["clean"] and client_id in broker.sessions and self.views.unanswered(client_id):
            # a worker that has not taken the session's last move yet could hear
            # of the next one first (its MOVE comes from another worker) and
            # route to the owner before: hand over once every worker answered
            self._next_move.setdefault(client_id, []).append(header)
            log.debug("client %s: hand-over waits for the answers to its last move", client_id)
            return
        session = self._taken_over(client_id, header["w"])
        reply = {"w": self.worker_id, "r": header["r"], "state": None}
        payloads: list = []
        if session is None and header["clean"]:
            # nothing to hand, and a clean start never reads the store: no commit to wait for
            self.link.bus.send(header["w"], b"HAND", reply)
            return
        if session is not None:
            if header["clean"]:
                broker.end_session(session, "discarded")
            else:
                reply["state"], payloads = export_session(session)
                self._forward(session, header["w"], reply["state"])
        self._reply_when_durable(header["w"], b"HAND", reply, tuple(payloads))

    def _taken_over(self, client_id: str, claimer: int):
        """Close the connection of client_id's session here (worker `claimer`
        takes it over): the session, offline now (None once it ended)."""
        broker = self.broker
        session = broker.sessions.get(client_id)
        if session is not None and session.conn is not None:
            log.info("client %s: taken over by worker %d", client_id, claimer)
            session.conn.taken_over()
            session.detach(publish_will=True)
            session = broker.sessions.get(client_id)
        return session

    def _reply_when_durable(self, peer: int, kind: bytes, header: dict, payloads: tuple) -> None:
        """Reply once what this worker wrote is in LMDB (not only in its write-ahead
        log): the claimer reads the store next."""
        stores, bus = self.broker.stores, self.link.bus
        if stores is None:
            bus.send(peer, kind, header, payloads)
            return
        loop = self.broker.loop
        stores.queue.when_stored(lambda: loop.call_soon_threadsafe(bus.send, peer, kind, header,
                                                                   payloads))

    # -- moving a session's routes ------------------------------------------------------

    def _forward(self, session, to: int, state: dict) -> None:
        """The session goes to worker `to`: release it here, keep its routes and
        forward what they bring until every worker routes to `to`."""
        client_id = session.client_id
        state["mv"] = move_id = next(self.link.ids)
        self.registry.mine.pop(client_id, None)
        self.broker.release_session(session)
        self._drop_forwarder(client_id)
        self.forwarders[client_id] = Forwarder(self, client_id, to, move_id, list(state["subs"]))
        self.views.moved(self.link.live - {to}, client_id, move_id, skip=False)

    def _import(self, source: int, state: dict, payloads: list) -> None:
        """Recreate a handed-over session here and take its routes over from `source`."""
        client_id = state["client_id"]
        filters = list(state["subs"])
        self._drop_forwarder(client_id, keep=set(filters))
        import_session(self.broker, state, payloads)
        self.views.moved(self.link.live, client_id, state["mv"], skip=True)
        router = self.broker.router
        for route_filter in filters:
            router.remove_remote_route(source, route_filter)
        self.link.send_after_messages(None, b"MOVE", {"w": self.worker_id, "c": client_id,
                                                      "from": source, "mv": state.get("mv"),
                                                      "f": filters})

    def on_move(self, header, _payloads) -> None:
        """The session `c` moved from worker `from` to worker `w`: route there now."""
        router = self.broker.router
        source, owner = header["from"], header["w"]
        for route_filter in header["f"]:
            if source != self.worker_id:
                router.remove_remote_route(source, route_filter)
            router.add_remote_route(owner, route_filter)
        moved = {"w": self.worker_id, "c": header["c"], "mv": header["mv"]}
        self.link.send_after_messages(owner, b"MOVED", moved)
        if source != self.worker_id:
            self.link.send_after_messages(source, b"MOVED", moved)
            return
        forwarder = self.forwarders.get(header["c"])
        if forwarder is not None and forwarder.move_id == header["mv"]:
            forwarder.moved = True
            # what the new owner routes from now on, plain for its other
            # subscribers, reached the session there: not to forward back
            self.views.moved((owner,), header["c"], header["mv"], skip=True)
            self._answered(forwarder, owner)

    def on_moved(self, header, _payloads) -> None:
        self.views.answered(header["w"], header["c"], header["mv"])
        forwarder = self.forwarders.get(header["c"])
        if forwarder is not None and forwarder.move_id == header["mv"]:
            self._answered(forwarder, header["w"])
        if header["c"] in self._next_move:
            self._hand_over_when_answered(header["c"])

    def _hand_over_when_answered(self, client_id: str) -> None:
        """Answer the CLAIMs held until every worker took the session's last move."""
        if not self.views.unanswered(client_id):
            for header in self._next_move.pop(client_id, ()):
                self.on_claim(header, ())

    def _answered(self, forwarder: Forwarder, peer: int) -> None:
        forwarder.acked.add(peer)
        if forwarder.moved and self.link.live <= forwarder.acked:
            self._drop_forwarder(forwarder.client_id)

    def own_routes(self, routes: dict[str, int], peer: int) -> dict[str, int]:
        """A worker that (re)started learns the routes of this worker without
        the ones its forwarders keep: it routes to the sessions' new owners
        from their SNAP, and owes no MOVED."""
        for forwarder in list(self.forwarders.values()):
            for route_filter in forwarder.filters:
                left = routes.get(route_filter, 0) - 1
                if left > 0:
                    routes[route_filter] = left
                else:
                    routes.pop(route_filter, None)
            self._answered(forwarder, peer)
        return routes

    def _drop_forwarder(self, client_id: str, keep: set = frozenset()) -> None:
        """Forget a forwarder and the routes it kept here (all but `keep`)."""
        forwarder = self.forwarders.pop(client_id, None)
        if forwarder is None:
            return
        self.views.answered(forwarder.to, client_id, forwarder.move_id)
        router = self.broker.router
        for topic_filter in forwarder.filters:
            if topic_filter not in keep:
                group, real_filter = parse_shared(topic_filter)
                router.unsubscribe(client_id, real_filter, group, announce=False)

    # -- messages for a session that moved --------------------------------------------

    def deliver_to(self, target: list, message, peer: int, ack_id):
        """A message forwarded to the session `target` names: what delivering it
        did (a Routed), or None when it waits for the session's import (parked:
        confirmed once delivered)."""
        client_id, qos, retain, sub_ids = target
        broker = self.broker
        session = broker.sessions.get(client_id) or self.forwarders.get(client_id)
        if session is not None:
            note = session.deliver(message, qos, retain, tuple(sub_ids), {})
            return routed.delivered(1) if note is None else note.counted(1)
        if client_id in self._claiming:
            self._parked.setdefault(client_id, []).append((target, message, peer, ack_id))
            return None
        broker.drops.count(client_id, message, "no_route")
        return routed.NOT_DELIVERED

    def _unpark(self, client_id: str) -> None:
        parked = self._parked.pop(client_id, ())
        for target, message, peer, ack_id in parked:
            self.link.forwarding.deliver_one(target, message, peer, ack_id)

    # -- peers dying, orphans -------------------------------------------------------------

    def peer_gone(self, peer: int) -> None:
        self.views.peer_gone(peer)
        for client_id, held in list(self._next_move.items()):
            held[:] = [header for header in held if header["w"] != peer]
            self._hand_over_when_answered(client_id)
            if not held:
                self._next_move.pop(client_id, None)
        for client_id, held in list(self._deferred.items()):
            held[:] = [header for header in held if header["w"] != peer]
            if not held:
                del self._deferred[client_id]
        for client_id, parked in list(self._parked.items()):
            parked[:] = [entry for entry in parked if entry[2] != peer]
        for forwarder in list(self.forwarders.values()):
            if forwarder.to != peer:
                self._answered(forwarder, peer)
                continue
            if not forwarder.moved:     # nobody moved the routes: they end here
                for route_filter in forwarder.filters:
                    self.link.route_changed(route_filter, -1)
            self._drop_forwarder(forwarder.client_id)

    async def restore_orphans(self, owners: list[int], dead: tuple[int, int | None]) -> set[str]:
        """Restore the persisted sessions no live worker holds; `owners` share them.
        `dead` is the worker (and its process id) whose death started it.
        Returns the client ids restored here; their routes are announced by the
        caller (orphans: TOOK)."""
        broker = self.broker
        if broker.stores is not None:
            broker.stores.recover_logs()    # the dead worker's last writes, before its sessions are read
        busy = broker.sessions.keys() | self._claiming.keys()
        candidates = [r.client_id for r in broker.stored_sessions() if r.client_id not in busy]
        if not candidates:
            return set()
        rank = owners.index(self.worker_id)
        candidates = [c for c in candidates if crc32(c.encode()) % len(owners) == rank]
        self._restoring.update(candidates)
        granted, cleaned = await self.registry.take(candidates, dead)
        restored: set[str] = set()
        for client_id in candidates:
            if client_id not in self._restoring:
                continue        # a CONNECT claimed it meanwhile
            self._restoring.discard(client_id)
            if client_id not in granted or client_id in broker.sessions:
                continue
            record = broker.stored_session(client_id)
            if record is not None and discarded(self.broker, record, cleaned.get(client_id)):
                self.registry.released(client_id)       # the id is left to nobody
                continue
            if record is not None:
                self._drop_forwarder(client_id)
                if broker.restore_session(record, announce=False) is not None:
                    restored.add(client_id)
        if restored:
            log.info("took over %d persistent sessions of a dead worker", len(restored))
        return restored


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
              if not (persisted and session.queue.has_row(d))]   # the new owner loads the rows
    state = {
        "client_id": session.client_id, "version": session.version,
        "expiry": session.expiry_interval, "persisted": persisted,
        "subs": {f: o.as_record() for f, o in session.subscriptions.items()},
        "next_pid": session.next_packet_id, "qos2_in": sorted(session.qos2_in),
        "pubcomp": sorted(session.awaiting_pubcomp), "inflight": inflight, "queued": queued,
    }
    return state, payloads


def import_session(broker, state: dict, payloads: list) -> None:
    """Recreate a handed-over session on this worker (offline, ready to attach);
    its routes are announced by the MOVE, not route by route."""
    remaining = iter(payloads)

    def next_delivery(entry: list) -> Delivery:
        header, qos, retain, sub_ids, seq = entry
        return Delivery(message_from_header(header, next(remaining)), qos, retain,
                        tuple(sub_ids), seq)

    session = broker.new_session(state["client_id"], state["version"], state["expiry"])
    session.restore_subscriptions({f: SubOptions.from_record(o) for f, o in state["subs"].items()},
                                  announce=False)
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
        session.own_queue().enqueue(next_delivery(entry))
    session.restore_inflight(inflight, state["next_pid"], state["qos2_in"], state["pubcomp"])
    session.take_released()
    session.disconnected_at = None
