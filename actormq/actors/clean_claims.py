"""Clean claims: the recent clean starts that a take-over of a dead worker's
sessions must not undo.

A clean CONNECT discards the previous session of its client id. When that
session's worker died with it stored, the discard is told by the registry
(STALE, see registry) — or lost, when the REG went to a shard that had died
too. A survivor that takes the dead worker's sessions over reads them from
the store, perhaps before the discard was written, perhaps after the clean
session ended and nobody held the id any more. So the shard remembers the
clean starts that replaced a holder, and every worker the fresh REGs it sent
(their shard may have died unheard), each with the time of its CONNECT, for
CLEAN_CLAIMS_KEPT at least: a take-over then discards a stored session older
than a clean start of its client id instead of restoring it. (A clean start
kept longer does no harm: a session stored before it must go anyway.)

Two generations of a dict, swapped when the older one is due: one dict store
per clean start, nothing to expire one by one; what an add finds is at most
three times CLEAN_CLAIMS_KEPT old.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("actormq.peers")

CLEAN_CLAIMS_KEPT = 5.0


class CleanClaims:
    """Client id -> the time (time.monotonic) of its latest clean CONNECT, kept a while."""

    __slots__ = ("_current", "_older", "_swap_at")

    def __init__(self) -> None:
        self._current: dict[str, float] = {}
        self._older: dict[str, float] = {}
        self._swap_at = 0.0

    def add(self, client_id: str, connected_at: float) -> None:
        if connected_at >= self._swap_at:
            recent = connected_at < self._swap_at + CLEAN_CLAIMS_KEPT
            self._older, self._current = self._current if recent else {}, {}
            self._swap_at = connected_at + CLEAN_CLAIMS_KEPT
        self._current[client_id] = connected_at

    def items(self) -> dict[str, float]:
        return {**self._older, **self._current}

    def of(self, client_ids) -> dict[str, float]:
        """The clean CONNECT times of these client ids, where known."""
        current, older = self._current, self._older
        found = {}
        for client_id in client_ids:
            connected_at = current.get(client_id, older.get(client_id))
            if connected_at is not None:
                found[client_id] = connected_at
        return found


def discarded(broker, record, connected_at: float | None) -> bool:
    """Discard the orphan's stored session `record` rather than restore it when
    a clean start of its client id (at `connected_at`) came after it was stored."""
    if connected_at is None or record.updated_at >= wall_time(connected_at):
        return False
    broker.discard_stored_session(record.client_id)
    log.info("client %s: session of a dead worker discarded by a clean start", record.client_id)
    return True


def wall_time(connected_at: float) -> float:
    """A time.monotonic() reading (shared by the machine's processes) as time.time()."""
    return time.time() - (time.monotonic() - connected_at)
