"""Forwarding: the messages a worker routes to its peers and takes from them
(PUB frames; see the frame table in `peers`).

Owns the outgoing batches (one PUB frame per peer and loop turn, at most
MAX_BATCH items: fan-out happens at the destination) and the routing of a
peer's PUB items here: a plain one through the Router, one `to` a session
that moved here through `takeover`, one for the sessions taken over from a
dead worker through `orphans`. A QoS 1/2 item carries an ack id when the
publisher waits for durability: `send_message` returns it, and the answer
(a DUR frame) goes out once what the item wrote here is committed
(`durability`). Congested sessions that a peer's messages reached hold that
peer back (`flow`).
"""

from __future__ import annotations

from functools import partial
from time import monotonic

from actormq.actors.messages import Message
from actormq.actors.wire import message_header, props_from_json

MAX_BATCH = 512
ACK = 9         # where a PUB item has its ack id: message_header + [share, ack, size, to]
IDLE_SECONDS = 0.0003   # a peer sent nothing for this long gets a message at once, unbatched
ASK_EVERY = 16          # to a peer without disc sessions, one QoS 1/2 message in this many asks
ASKED_BATCH = 64        # a batch goes at once when this many of its messages ask for an answer


class Forwarding:
    """The PUB frames of one worker, both ways."""

    def __init__(self, link) -> None:
        self.link = link
        self.broker = link.broker
        self.acks = link.acks
        self._outgoing: dict[int, tuple[list, list]] = {}
        self._flush_scheduled = False
        self._sent_at: dict[int, float] = {}      # peer -> when its last PUB frame went
        self._unasked: dict[int, int] = {}        # peer -> QoS 1/2 messages since the last ask
        self._asked: dict[int, int] = {}          # peer -> items of its batch that ask for an answer

    def send_message(self, worker_id: int, message: Message, share_target, to=None) -> int | None:
        """Queue a message for a peer; everything queued in one loop turn goes in
        one PUB frame per peer (measured: -w 2 QoS 0 fan-in, see the README),
        up to MAX_BATCH messages, or ASKED_BATCH that ask for an answer: their
        publishers wait for it, and the peer starts on them while this worker
        routes the rest of the turn (four publishers to an offline persistent
        session on the peer, disc, sync off: about 40k -> 50k msg/s).
        `to` names the session it is for when it is forwarded (see takeover).
        Returns the ack id the peer will answer once what it wrote is
        committed (None: nothing to wait for)."""
        link = self.link
        if worker_id not in link.live:
            if to is None:
                link.orphans.keep(worker_id, message, share_target)
            return None
        broker = self.broker
        broker.stats.bus_publish_frames += 1
        batch = self._outgoing.get(worker_id)
        alone = False
        if batch is None:
            now = monotonic()
            # nothing went to the peer for a while: no batch is forming, send now
            alone = now - self._sent_at.get(worker_id, 0.0) > IDLE_SECONDS
        acks = self.acks
        # a limbo message (`to` = [worker]) was acknowledged already: no ack
        if message.qos and acks.wanted and (to is None or len(to) > 1) and \
                (to is not None or worker_id in acks.asking or self._pace(worker_id, alone)):
            ack_id = acks.ack_for(worker_id)
            broker.stats.bus_durable_asks += 1
        else:
            ack_id = None
        item = message_header(message)
        item += (share_target, ack_id, len(message.payload), to)
        if alone:
            self._sent_at[worker_id] = now
            self._send_batch(worker_id, [item], [message.payload])
            return ack_id
        if batch is None:
            batch = self._outgoing[worker_id] = ([], [])
            if not self._flush_scheduled:
                self._flush_scheduled = True
                broker.loop.call_soon(self.flush)
        batch[0].append(item)
        batch[1].append(message.payload)
        asked = 0
        if ack_id is not None:
            asked = self._asked[worker_id] = self._asked.get(worker_id, 0) + 1
        if len(batch[0]) >= MAX_BATCH or asked >= ASKED_BATCH:
            del self._outgoing[worker_id]
            self._asked.pop(worker_id, None)
            self._sent_at[worker_id] = monotonic()
            self._send_batch(worker_id, *batch)
        return ack_id

    def _pace(self, worker_id: int, alone: bool) -> bool:
        """Whether a QoS 1/2 message to a peer without disc sessions asks for its
        answer anyway. Nothing is written there, but the answer paces the
        publishers: while one is awaited the sessions that asked hold their
        later acknowledgements, so their clients' windows bound what is on
        the way to the peer before its FULL (flow) can come back. A message
        that goes `alone` to a peer that got nothing for IDLE_SECONDS floods
        nothing and does not ask (the count goes on, so the next message of a
        batch does): its answer woke the publisher's worker just as the
        subscriber's client was woken, one message in ASK_EVERY 60 µs later at
        the median on two cores (scripts/latency_stages.py --phases 16)."""
        unasked = self._unasked.get(worker_id, 0) + 1
        if unasked < ASK_EVERY or alone:
            self._unasked[worker_id] = unasked
            return False
        self._unasked[worker_id] = 0
        return True

    def flush(self) -> None:
        """Send every batch queued so far (the end of the loop turn, or before a
        frame that must come after them)."""
        self._flush_scheduled = False
        outgoing, self._outgoing = self._outgoing, {}
        self._asked.clear()
        if outgoing:
            now = monotonic()
            for worker_id, (items, payloads) in outgoing.items():
                self._sent_at[worker_id] = now
                self._send_batch(worker_id, items, payloads)

    def peer_gone(self, peer: int) -> None:
        self._outgoing.pop(peer, None)
        self._asked.pop(peer, None)

    def _send_batch(self, worker_id: int, items: list, payloads: list) -> None:
        """One frame: the items as one orjson list, the payloads as one blob."""
        if not self.link.bus.send(worker_id, b"PUB", {"w": self.link.worker_id, "b": items},
                                  (b"".join(payloads),)):
            for item in items:
                if item[ACK] is not None:
                    self.acks.settle_ack(item[ACK], False)

    def on_publish(self, batch, payloads) -> None:
        """A peer's PUB frame: route (or hand over) each of its messages here."""
        blob = payloads[0]
        at = 0
        broker = self.broker
        acks = self.acks
        peer = batch["w"]
        skipped = self.link.takeover.views.skipping.get(peer)
        route = broker.router.route if skipped is None else \
            partial(broker.router.route_skipping, skipped)
        congested = []
        messages = batch["b"]
        broker.lone = len(messages) == 1
        for topic, qos, retain, props, expires_at, timestamp, origin, binary, share, ack_id, size, \
                to in messages:
            if props:
                props_from_json(props, binary)
            message = Message(topic, blob[at:at + size], qos, retain, props, expires_at, timestamp,
                              origin)
            at += size
            if to is not None:
                if len(to) == 1:
                    self.link.orphans.deliver(to[0], message)
                else:
                    self.deliver_one(to, message, peer, ack_id)
                continue
            routed = route(message, from_peer=True,
                           share_target=tuple(share) if share is not None else None)
            if not routed.delivered:
                broker.drops.count(origin, message, "no_route")
            if ack_id is not None:
                acks.confirm(peer, ack_id, routed)
            if routed.congested:
                congested.extend(routed.congested)
        if congested:
            self.link.flow.hold_peers(congested, peer)

    def deliver_one(self, target: list, message: Message, peer: int, ack_id) -> None:
        """A message forwarded to one session (see takeover); confirmed once delivered."""
        routed = self.link.takeover.deliver_to(target, message, peer, ack_id)
        if routed is not None and ack_id is not None:
            self.acks.confirm(peer, ack_id, routed)
