"""Refusals: a full store logs its refusals of rows once per episode, not once per row."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("actormq.storage.lmdb_store")

REFUSAL_LOG_SECONDS = 60.0


class Refusals:
    """Logs a store's refusals of rows once per episode, not once per row."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        self._logged_at = 0.0

    def refused(self, limit: int) -> None:
        self.count += 1
        now = time.monotonic()
        if self.count == 1:
            log.warning("the store in %s is full (%d bytes for queued and retained messages): "
                        "new ones are refused until space is freed", self.path, limit)
        elif now - self._logged_at >= REFUSAL_LOG_SECONDS:
            log.warning("the store in %s is still full: %d rows refused so far", self.path, self.count)
        else:
            return
        self._logged_at = now

    def accepted(self) -> None:
        if self.count:
            log.info("the store in %s takes rows again (%d were refused while it was full)",
                        self.path, self.count)
            self.count = 0
