"""Orphans: the messages routed to a worker that died, until the survivors
have taken over its persistent sessions.

When a peer dies, the survivors keep its routes until every survivor has
taken over its share of the dead peer's sessions (see
takeover.restore_orphans) and said so: TOOK carries the route filters of the
sessions it restored, and every worker moves those routes from the dead peer
to it in one step (as for a MOVE: no gap, no second copy). What a survivor
routes to the dead peer meanwhile waits here (its limbo). Then the dead
peer's routes go and the limbo is delivered to the sessions taken over from
it — here directly, and on every other survivor by a PUB item with `to` =
[dead worker id], which that survivor delivers to the sessions it took over
from the dead worker (only to those: everyone else had the message already).
A survivor whose own take-over is not done yet holds such items until it is;
the sessions stay known for ORPHANS_KEPT seconds after.

Exactly once: a limbo message goes to a session taken over here only when it
was kept before that session was restored here (after, the session's routes
lead here, and it got the message directly), and to another survivor only
when it was kept before that survivor's TOOK came (after, this worker routes
to that survivor).

A CONNECT on a survivor waits until its take-overs are over (`settled`), so
that a session of the dead peer is taken over, with its limbo, rather than
resumed from the store without it. A CONNECT that came before the survivor
heard of the death (its claim was asking the dead worker, or the registry
named the dead holder) and finds the session held by nobody is adopted into
the take-over (`adopt`): restored without announcing its routes, which go in
this survivor's TOOK, and given the limbo as the sessions taken over are;
the take-over waits for such claims before it says TOOK.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("actormq.peers")

ORPHANS_KEPT = 30.0
TOOK_TIMEOUT = 5.0
CLAIMS_TIMEOUT = 4.0        # claims under way at a death are answered in CLAIM_TIMEOUT


class Orphans:
    """Limbo messages and taken-over sessions per dead peer."""

    def __init__(self, link) -> None:
        self.link = link
        self.broker = link.broker
        self._limbo: dict[int, list] = {}        # dead peer -> messages routed to it meanwhile
        self._since: dict[int, dict[str, int]] = {}  # dead peer -> client id restored here ->
                                                     # limbo length then
        self._took_at: dict[int, dict[int, int]] = {}  # dead peer -> survivor -> limbo length
                                                       # when its TOOK came
        self._adoptable: set[int] = set()        # dead peers whose TOOK is not sent yet
        self._claims = 0                         # claims under way here (see adopt)
        self._no_claims = asyncio.Event()
        self._no_claims.set()
        self._taken: dict[int, set[str]] = {}    # dead peer -> client ids taken over from it
        self._held_claims: dict[int, list] = {}  # dead peer -> peers' CLAIMs of those, held
        self._early: dict[int, list] = {}        # dead peer -> peers' limbo items before ours
        self._waiting: dict[int, set[int]] = {}  # dead peer -> survivors not done taking over
        self._survivors: dict[int, set[int]] = {}  # dead peer -> the peers live at its death
        self._done: dict[int, asyncio.Event] = {}
        self._took_early: dict[int, set[int]] = {}   # dead peer -> TOOK before we knew
        self.taking: dict[int, asyncio.Event] = {}   # dead peer -> set once its take-over is over

    def peer_died(self, peer: int) -> None:
        self.taking.setdefault(peer, asyncio.Event())
        self._limbo.setdefault(peer, [])
        self._taken.pop(peer, None)
        self._since[peer] = {}
        self._adoptable.add(peer)
        early = self._took_early.pop(peer, set())
        self._took_at[peer] = dict.fromkeys(early, 0)
        self._survivors[peer] = set(self.link.live)
        self._waiting[peer] = set(self.link.live) - early
        self._done[peer] = asyncio.Event()
        for dead, waiting in self._waiting.items():
            self._answered(dead, peer)      # a survivor that dies now is done too

    def on_took(self, header, _payloads) -> None:
        """Survivor w restored its share of dead d's sessions: route their filters to w."""
        dead, survivor = header["d"], header["w"]
        if dead == self.link.worker_id:
            return      # this worker is the dead one's new incarnation: the SNAPs told it
        router = self.broker.router
        for route_filter in header["f"]:
            router.remove_remote_route(dead, route_filter)
            router.add_remote_route(survivor, route_filter)
        if dead in self._waiting:
            self._took_at[dead][survivor] = len(self._limbo.get(dead, ()))
            self._answered(dead, survivor)
        else:
            self._keep_early(self._took_early, dead, set()).add(survivor)

    def _answered(self, dead: int, survivor: int) -> None:
        waiting = self._waiting.get(dead)
        if waiting is not None:
            waiting.discard(survivor)
            if not waiting:
                self._done[dead].set()

    def keep(self, worker_id: int, message, share_target) -> None:
        """A message routed to a worker that is not live: keep it while it is in limbo."""
        limbo = self._limbo.get(worker_id)
        if limbo is not None and share_target is None:
            limbo.append(message)

    async def take_over(self, peer: int, pid: int | None, owners: list[int]) -> None:
        """Restore the sessions of the dead peer (process `pid`), then deliver what
        went to it meanwhile."""
        router = self.broker.router
        taken: set[str] = set()
        try:
            taken = await self.link.takeover.restore_orphans(owners, (peer, pid))
        finally:
            self._restored(peer, taken)
            await self._claims_resolved()
            self._adoptable.discard(peer)
            since = self._since.get(peer, {})
            sessions = self.broker.sessions
            filters = [route_filter for client_id in since if client_id in sessions
                       for route_filter in sessions[client_id].subscriptions]
            self.link.send_after_messages(None, b"TOOK", {"w": self.link.worker_id, "d": peer,
                                                          "f": filters})
            try:
                await asyncio.wait_for(self._done[peer].wait(), TOOK_TIMEOUT)
            except asyncio.TimeoutError:
                pass
            self._waiting.pop(peer, None)
            self._done.pop(peer, None)
            router.drop_worker_routes(peer)
            self._taken[peer] = taken = set(since)
            self.broker.loop.call_later(ORPHANS_KEPT, self._taken.pop, peer, None)
            self._deliver_limbo(peer, since, self._took_at.pop(peer, {}),
                                self._survivors.pop(peer, set()))
            for message in self._early.pop(peer, ()):
                router.route_to_clients(message, taken)
            self._since.pop(peer, None)
            for header in self._held_claims.pop(peer, ()):
                self.link.takeover.on_claim(header, ())
            taking = self.taking.pop(peer, None)
            if taking is not None:
                taking.set()

    def _restored(self, peer: int, client_ids) -> None:
        """These sessions of the dead peer are restored here now: route to them here."""
        router = self.broker.router
        sessions = self.broker.sessions
        at = len(self._limbo.get(peer, ()))
        since = self._since.setdefault(peer, {})
        for client_id in client_ids:
            if client_id in sessions:
                since[client_id] = at
                for route_filter in sessions[client_id].subscriptions:
                    router.remove_remote_route(peer, route_filter)

    def _deliver_limbo(self, peer: int, since: dict[str, int], took_at: dict[int, int],
                       survivors: set[int]) -> None:
        """Each limbo message to the sessions restored here after it was kept, and
        to the survivors whose TOOK came after it. A worker (re)started since the
        death took nothing over: it gets none (it would keep them, see deliver)."""
        limbo = self._limbo.pop(peer, ())
        router = self.broker.router
        survivors = [(survivor, took_at.get(survivor, len(limbo)))
                     for survivor in self.link.live & survivors if survivor != peer]
        restored = sorted(since.items(), key=lambda item: item[1])
        receivers = set(since)
        next_restored = 0
        for at, message in enumerate(limbo):
            while next_restored < len(restored) and restored[next_restored][1] <= at:
                receivers.discard(restored[next_restored][0])
                next_restored += 1
            router.route_to_clients(message, receivers)
            for survivor, took in survivors:
                if at < took:
                    self.link.forwarding.send_message(survivor, message, None, [peer])

    def hold_claim(self, client_id: str, header) -> bool:
        """A peer claims a session taken over here whose limbo is not delivered
        yet: answer once it is (handed on before, the session would miss it)."""
        for peer, since in self._since.items():
            if client_id in since:
                self._held_claims.setdefault(peer, []).append(header)
                return True
        return False

    # -- claims under way when a peer died ---------------------------------------------

    def claim_started(self) -> None:
        self._claims += 1
        self._no_claims.clear()

    def claim_resolved(self) -> None:
        self._claims -= 1
        if not self._claims:
            self._no_claims.set()

    async def _claims_resolved(self) -> None:
        """Wait until the claims under way here have found their sessions: new ones
        wait for the take-over (settled), those begun earlier may adopt orphans."""
        try:
            await asyncio.wait_for(self._no_claims.wait(), CLAIMS_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("claims under way did not finish in %.0f s", CLAIMS_TIMEOUT)

    def adopt(self, record, holder: int | None) -> bool:
        """A claim that began before this worker heard that `holder` died finds
        the session with nobody: restore it as part of the take-over of `holder`
        while that has not said TOOK. False when no such take-over is under way."""
        if holder not in self._adoptable:
            return False
        if self.broker.restore_session(record, announce=False) is not None:
            self._restored(holder, (record.client_id,))
            log.info("client %s: session of dead worker %d taken over", record.client_id, holder)
        return True

    async def settled(self) -> None:
        """Wait until the take-overs under way are over. A CONNECT for a dead peer's
        session waits here: resumed from the store meanwhile, the session would not
        be among those taken over, and what went to the dead peer in the meantime
        (acknowledged already) would reach nobody."""
        while self.taking:
            await next(iter(self.taking.values())).wait()

    def deliver(self, peer: int, message) -> None:
        """Another survivor's limbo message: for the sessions taken over here."""
        taken = self._taken.get(peer)
        if taken is None:
            self._keep_early(self._early, peer, []).append(message)
        elif taken:
            self.broker.router.route_to_clients(message, taken)

    def _keep_early(self, kept: dict, peer: int, empty):
        """What came for the take-over of `peer` before this worker heard of the
        death; forgotten after ORPHANS_KEPT if it never does."""
        if peer not in kept:
            kept[peer] = empty
            self.broker.loop.call_later(ORPHANS_KEPT, self._forget_early, kept, peer, empty)
        return kept[peer]

    @staticmethod
    def _forget_early(kept: dict, peer: int, entry) -> None:
        if kept.get(peer) is entry:
            del kept[peer]
