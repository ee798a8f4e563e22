"""The PeerLink: a worker's link to the other workers of its node over the bus.

Owns what crosses processes: route deltas and snapshots (every worker knows
which filters every other worker has subscribers for), messages routed to a
peer (one frame per destination worker), node-wide retained changes, counter
reports for $SYS, and session takeover (claim / handover) so that a client id
has exactly one live session in the node.

Frame kinds (header is orjson; payloads are raw frames):
  HELLO {w}              a worker (re)started: drop its old routes, send it ours
  SNAP  {w, routes}      every route filter of worker w with its count
  ROUTE {w, f, d}        route filter f of worker w changed by d (+1 / -1)
  PUB   {m, share}       a message to route here (payload frame 0)
  RET   {m}              a retained message changed (payload frame 0)
  STATS {w, s}           worker w's counters
  CLAIM {w, c, clean, r} worker w takes client id c; reply request id r
  HAND  {r, state}       the claimed session's state (payloads: its messages), or state null
"""

from __future__ import annotations

import asyncio
import itertools
import logging

from actormq.actors.messages import Delivery, Message, SubOptions

log = logging.getLogger("actormq.peers")

CLAIM_TIMEOUT = 3.0
STATS_SECONDS = 1.0


def message_header(message: Message) -> list:
    return [message.topic_name, message.qos, message.retain, message.properties,
            message.expires_at, message.timestamp, message.origin]


def message_from_header(header: list, payload: bytes) -> Message:
    topic, qos, retain, props, expires_at, timestamp, origin = header
    if "user_property" in props:
        props["user_property"] = [tuple(pair) for pair in props["user_property"]]
    return Message(topic, bytes(payload), qos, retain, props, expires_at, timestamp, origin)


class PeerLink:
    """Everything a worker says to and hears from its peers."""

    def __init__(self, broker, run_dir: str) -> None:
        from actormq.transport.bus import Bus
        self.broker = broker
        self.worker_id = broker.worker_id
        self.bus = Bus(run_dir, broker.worker_id, broker.worker_count,
                       broker.config.get("bus.hwm", 100000))
        self._claims: dict[int, tuple[asyncio.Future, list, int]] = {}
        self._request_ids = itertools.count(1)
        self._stats_task = None
        self._handlers = {
            b"HELLO": self._on_hello, b"SNAP": self._on_snapshot, b"ROUTE": self._on_route,
            b"PUB": self._on_publish, b"RET": self._on_retained, b"STATS": self._on_stats,
            b"CLAIM": self._on_claim, b"HAND": self._on_handover,
        }

    async def start(self) -> None:
        self.broker.peers = self
        self.bus.start(self.broker.loop, self._on_frame)
        self.bus.broadcast(b"HELLO", {"w": self.worker_id})
        self._stats_task = self.broker.loop.create_task(self._report_stats())

    async def stop(self) -> None:
        if self._stats_task is not None:
            self._stats_task.cancel()
        self.bus.close()

    def _on_frame(self, kind: bytes, header, payloads: list) -> None:
        self._handlers[kind](header, payloads)

    # -- routes ------------------------------------------------------------------

    def route_changed(self, route_filter: str, delta: int) -> None:
        self.bus.broadcast(b"ROUTE", {"w": self.worker_id, "f": route_filter, "d": delta})

    def _on_hello(self, header, _payloads) -> None:
        peer = header["w"]
        router = self.broker.router
        router.drop_worker_routes(peer)
        self.broker.peer_stats.pop(peer, None)
        self.bus.send(peer, b"SNAP", {"w": self.worker_id, "routes": router.local_filters()})
        if self.worker_id == min(w for w in range(self.broker.worker_count) if w != peer):
            for message in self.broker.retained.snapshot():
                self.bus.send(peer, b"RET", {"m": message_header(message)}, (message.payload,))

    def _on_snapshot(self, header, _payloads) -> None:
        peer = header["w"]
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
        self.broker.stats.bus_publish_frames += 1
        self.bus.send(worker_id, b"PUB", {"m": message_header(message), "share": share_target},
                      (message.payload,))

    def _on_publish(self, header, payloads) -> None:
        message = message_from_header(header["m"], payloads[0])
        share = header["share"]
        broker = self.broker
        broker.wrote_durable = False
        broker.router.route(message, from_peer=True,
                            share_target=tuple(share) if share is not None else None)

    def retained_changed(self, message: Message) -> None:
        self.bus.broadcast(b"RET", {"m": message_header(message)}, (message.payload,))

    def _on_retained(self, header, payloads) -> None:
        self.broker.retained.retain(message_from_header(header["m"], payloads[0]), persist=False)

    # -- counters ------------------------------------------------------------------------

    async def _report_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_SECONDS)
            self.bus.broadcast(b"STATS", {"w": self.worker_id, "s": self.broker.local_stats()})

    def _on_stats(self, header, _payloads) -> None:
        self.broker.peer_stats[header["w"]] = header["s"]

    # -- session takeover -------------------------------------------------------------------

    async def claim(self, client_id: str, clean_start: bool) -> None:
        """Take the client id from whichever peer has it; adopt its state unless clean."""
        peers = self.bus.peers
        if not peers:
            return
        request = next(self._request_ids)
        future = self.broker.loop.create_future()
        self._claims[request] = (future, [], len(peers))
        self.bus.broadcast(b"CLAIM", {"w": self.worker_id, "c": client_id, "clean": clean_start,
                                      "r": request})
        try:
            await asyncio.wait_for(future, CLAIM_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("claim of %s: not every worker answered in %.0f s", client_id, CLAIM_TIMEOUT)
        _future, handovers, _waiting = self._claims.pop(request)
        for state, payloads in handovers:
            if not clean_start and client_id not in self.broker.sessions:
                import_session(self.broker, state, payloads)

    def _on_claim(self, header, _payloads) -> None:
        broker = self.broker
        client_id = header["c"]
        session = broker.sessions.get(client_id)
        reply = {"r": header["r"], "state": None}
        if session is not None and session.conn is not None:
            log.info("client %s: taken over by worker %d", client_id, header["w"])
            session.conn.taken_over()
            session.detach(publish_will=True)
            session = broker.sessions.get(client_id)
        if session is None:
            self.bus.send(header["w"], b"HAND", reply)
            return
        if header["clean"]:
            broker.end_session(session)
            self.bus.send(header["w"], b"HAND", reply)
            return
        state, payloads = export_session(session)
        broker.release_session(session)
        reply["state"] = state
        peer = header["w"]
        stores = broker.stores
        if session.queue.persistent and stores is not None:
            loop = broker.loop
            stores.queue.when_durable(
                lambda: loop.call_soon_threadsafe(self.bus.send, peer, b"HAND", reply, tuple(payloads)))
        else:
            self.bus.send(peer, b"HAND", reply, tuple(payloads))

    def _on_handover(self, header, payloads) -> None:
        entry = self._claims.get(header["r"])
        if entry is None:
            return
        future, handovers, waiting = entry
        if header["state"] is not None:
            handovers.append((header["state"], payloads))
        waiting -= 1
        self._claims[header["r"]] = (future, handovers, waiting)
        if waiting <= 0 and not future.done():
            future.set_result(None)


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
