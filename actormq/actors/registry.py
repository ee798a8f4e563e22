"""The client-id registry: which worker holds each client id's session.

Sharded by a stable hash: the registry entry of client id c lives on worker
crc32(c) % N (its shard), which serializes the claims for c. A CONNECT
registers its client id with the shard (no round trip when this worker is
the shard: half the CONNECTs at -w 2) and learns the previous holder; only
that worker is asked for the session (a directed CLAIM), not every worker.
Claims for one id are ordered by the shard, so a worker that is claiming an
id itself answers a later claimer once its own session is open.

A CONNECT that can find no state to take over (clean start, and a session
that ends with its connection) does not wait for the shard: it opens its
session at once and registers without an answer (REGS); the shard
then kicks the previous holder itself (a CLAIM with `k`, answered by nobody),
exactly as a takeover would. Such a REGS may still be on its way when a later
CONNECT for the id registers, so every registration carries the time of its
CONNECT (`s`, the monotonic clock every process of the machine shares) and
the shard keeps the later CONNECT: a late REG of an older one gets itself
kicked. Every registration carries a token (`t`) too, which the shard keeps
with the entry and puts in a kick: a holder that registered the id again
since keeps its newer session (that registration reaches the shard after the
kicker's and is ordered there). So same-id CONNECTs racing on several
workers leave one connection (of clean ones, the one that connected last).

A fresh REG that replaced another holder is answered STALE: the claimer did
not read the store (it needs to only when an earlier holder may have left a
session there, one that died before anyone heard). The shard remembers such
clean starts, and every worker the fresh REGs it sent, a while (clean_claims):
a take-over of a dead worker's sessions drops the ones a clean start replaced.

Takes: REG (register, reply REGD with the previous holder; a previous holder
that died is named with its process id, so that a claimer that has not heard
of the death yet adopts the session into its take-over, see orphans), REGS
(fresh registrations, [client id, token, time] each: no reply, the previous
holder is kicked), UNREG (the sessions of these client
ids ended on a worker, which holds none of them any more), TAKE (may a
survivor restore these orphans? reply TAKEN; it names the dead worker, so a
shard that has not heard of the death yet takes it as said instead of
granting nothing).
REG, REGD and the kicks travel batched per loop turn (bus.send_soon), the
fresh registrations of a loop turn for one shard as one REGS frame
(bus.send_soon_item: one header for all of them, however many CONNECTs the
turn took), UNREG within a few milliseconds (bus.send_later);
the end of a session is told once the loop turn is over, and not at all when
the worker holds the client id again by then (a takeover on one worker ends
the old session before it opens the new one).
A restarted shard rebuilds its entries from its peers' SNAP frames (`held`)
before it answers. When the shard of an id is down, claims fall back to
asking every worker (BROADCAST).
"""

from __future__ import annotations

import asyncio
import time
from zlib import crc32

from actormq.actors.clean_claims import CleanClaims, wall_time

BROADCAST = -1          # the shard is down: ask every worker
READY_TIMEOUT = 3.0
_UNKNOWN = (None, 0.0)  # the claim of an entry learnt from a SNAP or a TAKE


class Registry:
    """This worker's shard of the client-id registry, and the way to the others."""

    def __init__(self, link) -> None:
        self.link = link
        self.worker_id = link.worker_id
        self.workers = link.broker.worker_count
        self.holders: dict[str, int] = {}           # client id of this shard -> holding worker
        self.claims: dict[str, tuple] = {}          # ... -> (its registration's token, its time)
        self.mine: dict[str, int] = {}              # client id held here -> token of our registration
        self._releasing: set[str] = set()           # sessions that ended here this loop turn
        self._ready = asyncio.Event()
        self._snapped: set[int] = set()             # peers whose SNAP rebuilt our entries
        self._queued: list = []                     # REG/TAKE that came before we were ready
        self._dead: dict[int, int | None] = {}      # dead worker -> its process id
        self.cleaned = CleanClaims()                # ids of this shard a clean start took
                                                    # from a holder
        self.sent_fresh = CleanClaims()             # ids of other shards registered fresh here

    def shard(self, client_id: str) -> int:
        return crc32(client_id.encode()) % self.workers

    # -- rebuilding after a (re)start --------------------------------------------------

    def start(self, sessions) -> None:
        """Our own sessions (restored at start) are ours; peers tell us theirs in SNAP."""
        for client_id in sessions:
            if self.shard(client_id) == self.worker_id:
                self.holders[client_id] = self.worker_id
        self.link.broker.loop.call_later(READY_TIMEOUT, self._become_ready)
        self._check_ready()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def held_for(self, peer: int, held) -> list[str]:
        """The client ids held here whose shard is `peer` (for its SNAP)."""
        return [client_id for client_id in held if self.shard(client_id) == peer]

    def on_snapshot(self, peer: int, held: list) -> None:
        for client_id in held:
            self.holders[client_id] = peer
            self.claims.pop(client_id, None)
        self._snapped.add(peer)
        self._check_ready()

    def _check_ready(self) -> None:
        if self.link.live <= self._snapped:
            self._become_ready()

    def _become_ready(self) -> None:
        if self._ready.is_set():
            return
        self._ready.set()
        queued, self._queued = self._queued, []
        for handler, header in queued:
            handler(header, ())

    # -- a CONNECT registers its client id ---------------------------------------------

    async def register(self, client_id: str) -> tuple[int | None, list | None]:
        """Make this worker the holder of client_id: (the live worker that held it
        before (None: nobody, BROADCAST: the shard is down), [the dead worker
        that held it, its process id] or None)."""
        shard = self.shard(client_id)
        if shard == self.worker_id:
            if not self._ready.is_set():
                await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT + 1)
            return self._set(client_id, self.worker_id, None, time.monotonic())
        if shard not in self.link.live:
            return BROADCAST, None
        self.mine[client_id] = token = next(self.link.ids)
        replies = await self.link.ask(b"REG", {"c": client_id, "t": token, "s": time.monotonic()},
                                      peers=(shard,), soon=True)
        if not replies:
            return BROADCAST, None
        return replies[0][0]["h"], replies[0][0].get("o")

    def register_at_once(self, client_id: str, fresh: bool) -> bool:
        """Register client_id without waiting when the answer is known here:
        this worker is its shard, ready, and nobody else holds it; or the
        session takes nothing over (`fresh`: clean start, not persistent), and
        the shard kicks whichever connection is the older one. False when
        `register` must find out (the shard is down or not ready yet)."""
        shard = self.shard(client_id)
        if shard == self.worker_id:
            if not self._ready.is_set():
                return False
            holder = self.holders.get(client_id)
            if holder is None or holder == self.worker_id:
                self.holders[client_id] = self.worker_id
                self.claims[client_id] = (None, time.monotonic())
                return True
            if not fresh:
                return False
            token, _since = self.claims.get(client_id, _UNKNOWN)
            now = time.monotonic()
            holder, dead = self._set(client_id, self.worker_id, None, now)
            self._kick(client_id, self.worker_id, holder, token)
            if holder is not None or dead is not None:
                self.cleaned.add(client_id, now)
            return True
        if not fresh or shard not in self.link.live:
            return False
        self.mine[client_id] = token = next(self.link.ids)
        now = time.monotonic()
        # at the end of this loop turn, not within send_later's few milliseconds: until the
        # shard has it, a persistent CONNECT on the old holder's worker still resumes there
        self.link.bus.send_soon_item(shard, b"REGS", [client_id, token, now])
        self.sent_fresh.add(client_id, now)     # lost if the shard died unheard
        return True

    def _kick(self, client_id: str, claimer: int, holder: int | None, token: int | None) -> None:
        """End the session of `holder` (the registration `token`) for `claimer`."""
        if holder is None or holder == claimer:
            return
        header = {"w": claimer, "r": 0, "c": client_id, "clean": True, "d": True, "k": token}
        if holder == self.worker_id:
            self.link.takeover.on_claim(header, ())
        else:
            self.link.bus.send_soon(holder, b"CLAIM", header)

    def kicks(self, client_id: str, token: int | None) -> bool:
        """Does a kick for the registration `token` end the session held here?
        Not when this worker registered client_id again since."""
        return token is None or self.mine.get(client_id, token) == token

    def _set(self, client_id: str, worker: int, token: int | None, since: float
             ) -> tuple[int | None, list | None]:
        previous = self.holders.get(client_id)
        self.holders[client_id] = worker
        self.claims[client_id] = (token, since)
        if previous is None or previous == worker:
            return None, None
        if previous != self.worker_id and previous not in self.link.live:
            return None, [previous, self._dead.get(previous)]
        return previous, None

    def on_register(self, header, _payloads) -> None:
        self._answer(header, b"REGD", self._registered, self.on_register)

    def on_fresh_registrations(self, header, _payloads) -> None:
        """REGS: registrations that wait for no answer, [client id, token, time] each."""
        if not self._ready.is_set():
            self._queued.append((self.on_fresh_registrations, header))
            return
        claimer = header["w"]
        for client_id, token, since in header["i"]:
            self._registered_fresh(client_id, claimer, token, since)

    def _registered(self, header) -> dict:
        holder, dead = self._set(header["c"], header["w"], header["t"], header["s"])
        return {"h": holder, "o": dead}

    def _registered_fresh(self, client_id: str, claimer: int, claim_token: int,
                          connected_at: float) -> None:
        """A registration that waits for no answer: the later CONNECT keeps the
        client id, the other connection is kicked (its REG may have been on
        its way while the later CONNECT registered)."""
        holder = self.holders.get(client_id)
        token, since = self.claims.get(client_id, _UNKNOWN)
        if holder is not None and holder != claimer and since > connected_at and \
                (holder == self.worker_id or holder in self.link.live):
            self._kick(client_id, holder, claimer, claim_token)
            return
        holder, dead = self._set(client_id, claimer, claim_token, connected_at)
        self._kick(client_id, claimer, holder, token)
        if (holder is not None and holder != claimer) or dead is not None:
            # the claimer read nothing from the store: the holder may have left a session there
            self.link.bus.send_soon(claimer, b"STALE", {"c": client_id, "s": connected_at})
            self.cleaned.add(client_id, connected_at)

    def on_stale(self, header, _payloads) -> None:
        """A clean CONNECT here took client id `c` without reading the store
        (claim_at_once) while the shard had it held elsewhere: drop a session
        its holder left in the store, unless written after that CONNECT."""
        self.link.broker.discard_stored_session(header["c"], written_before=wall_time(header["s"]))

    def _answer(self, header, kind: bytes, decide, handler) -> None:
        """Reply decide(header) (the reply's fields) to a peer's request, once ready."""
        if not self._ready.is_set():
            self._queued.append((handler, header))
            return
        self.link.bus.send_soon(header["w"], kind, {"w": self.worker_id, "r": header["r"],
                                                    **decide(header)})

    def released(self, client_id: str) -> None:
        """The session of client_id ended here: tell its shard once this loop
        turn is over, unless this worker holds client_id again by then."""
        if not self._releasing:
            self.link.broker.loop.call_soon(self._release)
        self._releasing.add(client_id)

    def _release(self) -> None:
        released, self._releasing = self._releasing, set()
        by_shard: dict[int, list[str]] = {}
        is_held = self.link.takeover.is_held
        for client_id in released:
            if not is_held(client_id):
                self.mine.pop(client_id, None)
                by_shard.setdefault(self.shard(client_id), []).append(client_id)
        for shard, client_ids in by_shard.items():
            if shard == self.worker_id:
                self.on_unregister({"c": client_ids, "w": self.worker_id}, ())
            elif shard in self.link.live:
                self.link.bus.send_later(shard, b"UNREG", {"c": client_ids, "w": self.worker_id})

    def on_unregister(self, header, _payloads) -> None:
        holders, worker = self.holders, header["w"]
        for client_id in header["c"]:
            if holders.get(client_id) == worker:
                del holders[client_id]
                self.claims.pop(client_id, None)

    # -- orphans of a dead worker ------------------------------------------------------

    async def take(self, client_ids: list[str], dead: tuple[int, int | None]
                   ) -> tuple[set[str], dict[str, float]]:
        """Become the holder of the orphans nobody holds since worker `dead`
        (worker id, process id) died: (the ones granted, the times of the clean
        starts that took any of them, as far as known). Those whose shard is
        down are granted when no worker holds them (HOLDS)."""
        by_shard: dict[int, list[str]] = {}
        for client_id in client_ids:
            by_shard.setdefault(self.shard(client_id), []).append(client_id)
        granted: set[str] = set()
        unknown: list[str] = []
        cleaned: dict[str, float] = {}
        for shard, ids in by_shard.items():
            if shard == self.worker_id:
                granted.update(self._grant(ids, self.worker_id))
                cleaned.update(self.cleaned.of(ids))
            elif shard not in self.link.live:
                unknown += ids
            else:
                replies = await self.link.ask(b"TAKE", {"c": ids, "d": dead[0], "p": dead[1]},
                                             peers=(shard,))
                if replies:
                    granted.update(replies[0][0]["granted"])
                    cleaned.update(replies[0][0].get("clean", {}))
        if unknown:
            replies = await self.link.ask(b"HOLDS", {"c": unknown, "d": dead[0], "p": dead[1]})
            held = {client_id for header, _ in replies for client_id in header["held"]}
            granted.update(c for c in unknown if c not in held)
            cleaned.update(self.sent_fresh.of(unknown))
            for header, _ in replies:
                cleaned.update(header["clean"])
        return granted, cleaned

    def on_holds(self, header, _payloads) -> None:
        # a worker that has not heard of the death yet would register fresh
        # CONNECTs with the dead shard, and the answer here would miss them
        self.link.peer_down(header["d"], header["p"])
        is_held = self.link.takeover.is_held
        self.link.bus.send(header["w"], b"HELD", {
            "w": self.worker_id, "r": header["r"], "held": [c for c in header["c"] if is_held(c)],
            "clean": self.sent_fresh.of(header["c"])})

    def _grant(self, client_ids: list[str], worker: int) -> list[str]:
        granted = []
        for client_id in client_ids:
            holder = self.holders.get(client_id)
            if holder is None or (holder != self.worker_id and holder not in self.link.live):
                self.holders[client_id] = worker
                self.claims.pop(client_id, None)
                granted.append(client_id)
        return granted

    def on_take(self, header, _payloads) -> None:
        # The asker saw the dead worker die; a shard that has not heard of it yet
        # would still count that worker as the holder and grant nothing.
        self.link.peer_down(header["d"], header["p"])
        self._answer(header, b"TAKEN", lambda request: {
            "granted": self._grant(request["c"], request["w"]),
            "clean": self.cleaned.of(request["c"])}, self.on_take)

    def peer_gone(self, peer: int, pid: int | None) -> None:
        """The dead peer's entries stay until their sessions are taken (TAKE)
        or claimed; a claim treats a dead holder as nobody (and names it)."""
        self._dead[peer] = pid
        self._snapped.discard(peer)
        self._check_ready()
        # the fresh REGs sent to the dead shard lately may never have arrived:
        # the sessions their clean starts replaced go here
        discard = self.link.broker.discard_stored_session
        for client_id, connected_at in self.sent_fresh.items().items():
            if self.shard(client_id) == peer:
                discard(client_id, written_before=wall_time(connected_at))
