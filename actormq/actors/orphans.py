"""Orphans: the messages routed to a worker that died, until the survivors
have taken over its persistent sessions.

When a peer dies, the survivors keep its routes until every survivor has
taken over its share of the dead peer's sessions (see
takeover.restore_orphans) and said so: TOOK carries the route filters of the
sessions it restored, and every worker moves those routes from the dead peer
to it in one step (as for a MOVE: no gap, no second copy). What a survivor routes to the dead peer meanwhile waits here (its
limbo). Then the dead peer's routes go and the limbo is delivered to the
sessions taken over from it — here directly, and on every other survivor by a PUB item
with `to` = [dead worker id], which that survivor delivers to the sessions it
took over from the dead worker (only to those: everyone else had the message
already). A survivor whose own take-over is not done yet holds such items
until it is; the sessions stay known for ORPHANS_KEPT seconds after.
A CONNECT on a survivor waits until its take-overs are over (`settled`), so
that a session of the dead peer is taken over, with its limbo, rather than
resumed from the store without it.
"""

from __future__ import annotations

import asyncio

ORPHANS_KEPT = 30.0
TOOK_TIMEOUT = 5.0


class Orphans:
    """Limbo messages and taken-over sessions per dead peer."""

    def __init__(self, link) -> None:
        self.link = link
        self.broker = link.broker
        self._limbo: dict[int, list] = {}        # dead peer -> messages routed to it meanwhile
        self._taken: dict[int, set[str]] = {}    # dead peer -> client ids taken over from it
        self._early: dict[int, list] = {}        # dead peer -> peers' limbo items before ours
        self._waiting: dict[int, set[int]] = {}  # dead peer -> survivors not done taking over
        self._done: dict[int, asyncio.Event] = {}
        self._took_early: dict[int, set[int]] = {}   # dead peer -> TOOK before we knew
        self.taking: dict[int, asyncio.Event] = {}   # dead peer -> set once its take-over is over

    def peer_died(self, peer: int) -> None:
        self.taking.setdefault(peer, asyncio.Event())
        self._limbo.setdefault(peer, [])
        self._taken.pop(peer, None)
        self._waiting[peer] = set(self.link.live) - self._took_early.pop(peer, set())
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
            self._answered(dead, survivor)
        else:
            self._took_early.setdefault(dead, set()).add(survivor)

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
            sessions = self.broker.sessions
            filters = [route_filter for client_id in taken if client_id in sessions
                       for route_filter in sessions[client_id].subscriptions]
            for route_filter in filters:
                router.remove_remote_route(peer, route_filter)
            self.link.send_after_messages(None, b"TOOK", {"w": self.link.worker_id, "d": peer,
                                                          "f": filters})
            try:
                await asyncio.wait_for(self._done[peer].wait(), TOOK_TIMEOUT)
            except asyncio.TimeoutError:
                pass
            self._waiting.pop(peer, None)
            self._done.pop(peer, None)
            router.drop_worker_routes(peer)
            self._taken[peer] = taken
            self.broker.loop.call_later(ORPHANS_KEPT, self._taken.pop, peer, None)
            limbo = self._limbo.pop(peer, ())
            for message in limbo:
                router.route_to_clients(message, taken)
                for survivor in self.link.live:
                    self.link.forwarding.send_message(survivor, message, None, [peer])
            for message in self._early.pop(peer, ()):
                router.route_to_clients(message, taken)
            taking = self.taking.pop(peer, None)
            if taking is not None:
                taking.set()

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
            self._early.setdefault(peer, []).append(message)
        elif taken:
            self.broker.router.route_to_clients(message, taken)
