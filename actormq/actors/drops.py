"""Drops: every message the broker drops, counted by reason and logged.

Reasons: `queue_full` (a subscriber's queue at its limit), `hold_timeout` (a
subscriber's queue at its limit after its publishers were held back for
`queue.max_publisher_hold`), `expired` (the message expiry interval passed
while it was queued), `no_route` (it reached a worker whose subscriber was
gone), `too_large` (larger than the subscriber's maximum packet size). Each
is a counter in $SYS (`$SYS/broker/messages/dropped/<reason>`, beside the
total) and a warning, one line per client and reason per LOG_EVERY seconds
with the count.
"""

from __future__ import annotations

import logging
import time

from actormq.hooks import DropReason

log = logging.getLogger("actormq.drops")

REASONS = ("queue_full", "hold_timeout", "expired", "no_route", "too_large")
# the reason the `message.dropped` hook is told (a hold that timed out ends in a full queue)
HOOK_REASONS = {"queue_full": DropReason.QUEUE_FULL, "hold_timeout": DropReason.QUEUE_FULL,
                "expired": DropReason.EXPIRED, "no_route": DropReason.NO_SUBSCRIBERS,
                "too_large": DropReason.TOO_LARGE}
LOG_EVERY = 10.0


class Drops:
    """Counts drops into the worker's Stats, tells the `message.dropped` hook
    and rate-limits their log lines."""

    def __init__(self, broker, clock=time.monotonic) -> None:
        self.broker = broker
        self.stats = broker.stats
        self._clock = clock
        self._logged: dict[tuple[str, str], list] = {}  # (client, reason) -> [logged at, since]

    def count(self, client_id: str, message, reason: str) -> None:
        stats = self.stats
        stats.messages_dropped += 1
        name = "dropped_" + reason
        setattr(stats, name, getattr(stats, name) + 1)
        chain = self.broker.hooks.message_dropped
        if chain is not None:
            chain.notify(client_id, message, HOOK_REASONS[reason])
        key = (client_id, reason)
        entry = self._logged.get(key)
        if entry is not None:
            entry[1] += 1
            return
        self._logged[key] = [self._clock(), 0]
        log.warning("client %s: 1 message dropped (%s), on %s", client_id, reason,
                    message.topic_name)

    def report(self) -> None:
        """Log what was dropped since each client's last line once LOG_EVERY passed."""
        if not self._logged:
            return
        now = self._clock()
        for key, entry in list(self._logged.items()):
            logged_at, since = entry
            if now - logged_at < LOG_EVERY:
                continue
            if not since:
                del self._logged[key]
                continue
            log.warning("client %s: %d messages dropped (%s) in the last %.0f s", key[0], since,
                        key[1], now - logged_at)
            entry[0], entry[1] = now, 0
