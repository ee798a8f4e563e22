"""Durability across workers: when what one publish wrote is committed
everywhere it went, so the publisher's PUBACK/PUBREC can go out.

A QoS 1/2 message routed (or forwarded) to a peer in a disc mode carries an
ack id (`ack_for`; routing returns them in its outcome, `routed.Routed.acks`);
the peer answers it in a DUR frame once what the message wrote there is
committed (or refused). `when_durable(acks, ...)` (what the publisher's
session waits on) runs once this worker's store and every such peer
committed, in the order it was called, so acknowledgements stay in order. A
peer that dies before it answered fails the wait.

Only a peer that holds a session with a disc queue can write what it is
sent, so only such peers are asked for every message (`asking`); the others
for one in `forwarding.ASK_EVERY`, which paces the publishers (see
`Forwarding._pace`). A worker says DURS {w, on} when it gets its first such
session and when, a while after its last one went, nothing it forwards for
a moved session is under way any more (and in its SNAP). A clean subscriber
on another worker costs one DUR frame in ASK_EVERY messages rather than one
per loop turn. The DURS of a new session goes out before any route of its
subscriptions (the bus is FIFO between two workers), so a peer asks for
answers no later than it routes to that session.
"""

from __future__ import annotations

import logging
from collections import deque
from functools import partial

from actormq.actors.routed import Routed
from actormq.errors import StorageError

log = logging.getLogger("actormq.peers")

QUIET_SECONDS = 1.0     # how long after its last disc session a worker tells peers to stop asking


class PeersRefused(StorageError):
    """Other workers could not save some of what a wait covered (a full
    queue, a worker that died): `acks`, their ack ids. This worker's store
    committed its part."""

    def __init__(self, acks: tuple) -> None:
        super().__init__("a worker the message went to could not save it")
        self.acks = acks


class _Durable:
    """One `when_durable` call: what it waits for, and what to run then."""

    __slots__ = ("callback", "on_error", "waiting", "failed", "refused")

    def __init__(self, callback, on_error) -> None:
        self.callback = callback
        self.on_error = on_error
        self.waiting = 1            # this worker's store
        self.failed = False         # this worker's store failed
        self.refused = None         # ack ids other workers refused

    def run(self) -> None:
        if not self.failed and self.refused is None:
            self.callback()
        elif self.on_error is not None:
            self.on_error(StorageError("this worker's store could not save the message")
                          if self.failed else PeersRefused(tuple(self.refused)))
        else:
            log.warning("a message routed to another worker may not have been saved")


class DurableAcks:
    """The ack ids this worker waits for, and the DUR answers it owes its peers."""

    def __init__(self, broker, bus, ids) -> None:
        self.broker = broker
        self.bus = bus
        self._ids = ids                             # shared with the PeerLink's request ids
        self.wanted = broker.stores is not None and \
            broker.config.get("queue.storage", "ram") != "ram"
        self._waits: dict[int, list] = {}           # ack id -> [peer, _Durable or None]
        self._order: deque[_Durable] = deque()
        self._confirms: dict[int, tuple[list, list]] = {}   # peer -> (ack ids ok, refused)
        self._committing: list[tuple[int, int]] = []        # (peer, ack id) waiting for this worker's commit
        self.asking: set[int] = set()       # peers holding disc sessions: QoS 1/2 to them is answered
        self.holding = False                # what this worker last told its peers about its own
        self._quiet_timer = None

    # -- which peers are asked ---------------------------------------------------------

    def holding_changed(self, holding: bool) -> None:
        """This worker got its first session with a disc queue, or lost its last."""
        if not self.wanted:
            return
        if holding:
            if self._quiet_timer is not None:
                self._quiet_timer.cancel()
                self._quiet_timer = None
            if not self.holding:
                self.holding = True
                self.bus.broadcast(b"DURS", {"w": self.broker.worker_id, "on": True})
        elif self.holding and self._quiet_timer is None:
            self._quiet_timer = self.broker.loop.call_later(QUIET_SECONDS, self._quiet)

    def _quiet(self) -> None:
        """No disc session left: stop being asked, once no session that moved
        away is forwarded from here any more (its messages may still be written
        where it went)."""
        self._quiet_timer = None
        if self.broker.durable_sessions:
            return
        if self.broker.forwarders:
            self._quiet_timer = self.broker.loop.call_later(QUIET_SECONDS, self._quiet)
            return
        self.holding = False
        self.bus.broadcast(b"DURS", {"w": self.broker.worker_id, "on": False})

    def on_holding(self, header, _payloads) -> None:
        """A peer's DURS."""
        if header["on"]:
            self.asking.add(header["w"])
        else:
            self.asking.discard(header["w"])

    def ack_for(self, worker_id: int) -> int:
        """A DUR worker_id will answer; the publisher's acknowledgement waits for
        it when the publish is acknowledged (see when_durable). An ack id nobody
        waits for (a will) is forgotten when its answer comes."""
        ack_id = next(self._ids)
        self._waits[ack_id] = [worker_id, None]
        return ack_id

    def when_durable(self, acks: tuple, callback, on_error=None) -> None:
        """Run callback once what a publish wrote is committed, here and on every
        worker it went to (its ack ids: `acks`); on_error(StorageError) instead
        when a part failed. Callbacks run in the order of the calls."""
        entry = _Durable(callback, on_error)
        for ack_id in acks:
            wait = self._waits.get(ack_id)
            if wait is not None and wait[1] is None:
                wait[1] = entry
                entry.waiting += 1
        self._order.append(entry)
        stores = self.broker.stores
        if stores is None:
            self._settle(entry, True)
            return
        stores.queue.when_durable(partial(self._settle, entry, True),
                                  lambda _error: self._settle(entry, False), self.broker.loop)

    # -- answers owed to peers ---------------------------------------------------------

    def confirm(self, peer: int, ack_id: int, routed: Routed) -> None:
        """Tell the publisher's worker once what this message wrote here (and on
        any worker it was forwarded to: `routed.acks`) is committed."""
        broker = self.broker
        if routed.quota_exceeded:
            self.queue_confirm(peer, ack_id, False)
            return
        if routed.acks:     # forwarded on: wait for those too
            queue_confirm = self.queue_confirm
            self.when_durable(routed.acks, lambda: queue_confirm(peer, ack_id, True),
                              lambda _error: queue_confirm(peer, ack_id, False))
            return
        if not routed.durable or broker.stores is None:
            self.queue_confirm(peer, ack_id, True)
            return
        committing = self._committing
        if not committing:
            broker.loop.call_soon(self._when_committed)
        committing.append((peer, ack_id))

    def _when_committed(self) -> None:
        """One wait for this worker's commit for the answers of a loop turn's
        messages (a PUB frame's, mostly), not one per message."""
        committing, self._committing = self._committing, []
        self.broker.stores.queue.when_durable(partial(self._confirm_all, committing, True),
                                              partial(self._confirm_all, committing, False),
                                              self.broker.loop)

    def _confirm_all(self, committing: list, ok, _error=None) -> None:
        confirms = self._confirms
        which = 0 if ok else 1
        for peer, ack_id in committing:     # queue_confirm(peer, ack_id, ok), inline
            lists = confirms.get(peer)
            if lists is None:
                lists = confirms[peer] = ([], [])
            lists[which].append(ack_id)
        self._flush_confirms()      # the commit is done: no turn more for the answers

    def queue_confirm(self, peer: int, ack_id: int, ok: bool) -> None:
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

    # -- answers from peers ------------------------------------------------------------

    def on_durable(self, header, _payloads) -> None:
        """A peer's DUR: the waits its answers end run once, in order, after all of them."""
        waits = self._waits
        for ack_id in header["ok"]:     # settle_ack(ack_id, True) without the order's turn
            wait = waits.pop(ack_id, None)
            if wait is not None and wait[1] is not None:
                wait[1].waiting -= 1
        for ack_id in header["no"]:
            self.settle_ack(ack_id, False)
        self._run_settled()

    def settle_ack(self, ack_id: int, ok: bool) -> None:
        wait = self._waits.pop(ack_id, None)
        if wait is not None and wait[1] is not None:
            self._settle(wait[1], ok, ack_id)

    def peer_gone(self, peer: int) -> None:
        """A peer died: what it never answered failed."""
        self.asking.discard(peer)
        for ack_id, (owner, _entry) in list(self._waits.items()):
            if owner == peer:
                self.settle_ack(ack_id, False)

    def _settle(self, entry: _Durable, ok: bool, ack_id: int | None = None) -> None:
        """One part of entry's wait is over: this worker's store (ack_id None)
        or the answer to ack_id."""
        entry.waiting -= 1
        if not ok:
            if ack_id is None:
                entry.failed = True
            elif entry.refused is None:
                entry.refused = [ack_id]
            else:
                entry.refused.append(ack_id)
        self._run_settled()

    def _run_settled(self) -> None:
        """Run the waits at the head of the order whose parts are all over."""
        order = self._order
        while order and order[0].waiting <= 0:
            order.popleft().run()
