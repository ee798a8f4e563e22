"""Peer views: where each peer routes a session that moved to or from this
worker, until the peer said it routes to the session's new owner (MOVED).

A peer that has not yet taken a move into this worker still routes the
session to its old owner, which forwards it here; when the peer also has a
route here for other subscribers of the same topic, the same message comes
twice: forwarded for the session, and plain for the others. So a plain
message from a peer whose view of the session is elsewhere skips it here
(the forwarded copy delivers it), and one from a peer whose view is here
reaches it. A peer takes the moves of one session in order and answers
each with MOVED to the old and the new owner, behind the messages it routed
before (the bus is FIFO between two workers): the moves this worker took
part in are, per peer and session, a queue of views that MOVED pops.

Nothing is kept while no session moves: `skipping` is empty, and the PUB
path looks it up once per frame.
"""

from __future__ import annotations


class PeerViews:
    """Per peer and moved session: the moves the peer has not answered yet,
    oldest first, each with whether the peer's plain messages skip the session
    here until it answers that move."""

    def __init__(self) -> None:
        self._pending: dict[int, dict[str, list[tuple[int, bool]]]] = {}
        self.skipping: dict[int, set[str]] = {}     # peer -> sessions its plain messages skip

    def moved(self, peers, client_id: str, move_id: int, skip: bool) -> None:
        """The session moved here or away with `move_id`; each of `peers` answers
        it (MOVED). skip: until then the peer routes the session elsewhere
        (a move here), or to here no longer (the new owner of a move away)."""
        for peer in peers:
            pending = self._pending.setdefault(peer, {}).setdefault(client_id, [])
            pending.append((move_id, skip))
            self._update(peer, client_id, pending)

    def answered(self, peer: int, client_id: str, move_id) -> None:
        """The peer routes the session as move `move_id` says from now on."""
        sessions = self._pending.get(peer)
        pending = sessions.get(client_id) if sessions else None
        if not pending:
            return
        pending[:] = [entry for entry in pending if entry[0] != move_id]
        if not pending:
            del sessions[client_id]
            if not sessions:
                del self._pending[peer]
        self._update(peer, client_id, pending)

    def _update(self, peer: int, client_id: str, pending: list) -> None:
        if pending and pending[0][1]:
            self.skipping.setdefault(peer, set()).add(client_id)
            return
        skipped = self.skipping.get(peer)
        if skipped is not None:
            skipped.discard(client_id)
            if not skipped:
                del self.skipping[peer]

    def unanswered(self, client_id: str) -> bool:
        """Whether some peer has not answered a move of the session yet."""
        return any(client_id in sessions for sessions in self._pending.values())

    def peer_gone(self, peer: int) -> None:
        self._pending.pop(peer, None)
        self.skipping.pop(peer, None)
