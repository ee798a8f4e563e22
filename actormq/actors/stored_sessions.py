"""The sessions a worker keeps in the store: which worker owns a stored
session after a restart (a stable crc32 of the client id), the records read,
restored offline with their subscriptions, queue and expiry, or discarded. A
base class of Broker.
"""

from __future__ import annotations

import logging
import time
from zlib import crc32

from actormq.actors.messages import SubOptions
from actormq.actors.session import Session
from actormq.storage.records import SessionRecord, decode_session, queue_prefix, session_key

log = logging.getLogger("actormq.broker")


class StoredSessions:
    """The stored-session half of a Broker (uses its stores, config, sessions,
    worker id and count, new_session)."""

    def owns(self, client_id: str) -> bool:
        """Whether this worker is where a persisted session lives after a restart."""
        return crc32(client_id.encode()) % self.worker_count == self.worker_id

    def restore_sessions(self) -> int:
        """Bring back this worker's share of the persistent sessions after a restart."""
        restored = sum(1 for record in self.stored_sessions()
                       if self.owns(record.client_id) and record.client_id not in self.sessions
                       and self.restore_session(record) is not None)
        if restored:
            log.info("restored %d persistent sessions", restored)
        self._count_offline()
        return restored

    def _stores_sessions(self) -> bool:
        return self.stores is not None and self.config.get("queue.storage", "ram") != "ram"

    def stored_sessions(self) -> list[SessionRecord]:
        """Every session record in the store (none when queues live in RAM)."""
        if not self._stores_sessions():
            return []
        return [decode_session(value) for _key, value in self.stores.session.scan("session")]

    def stored_session(self, client_id: str) -> SessionRecord | None:
        if not self._stores_sessions():
            return None
        value = self.stores.session.get("session", session_key(client_id))
        return decode_session(value) if value is not None else None

    def discard_stored_session(self, client_id: str, written_before: float | None = None) -> None:
        """Delete a persisted session nobody holds (a clean start for it); with
        `written_before`, only one stored before that time (time.time())."""
        if self._stores_sessions():
            key = session_key(client_id)
            value = self.stores.session.get("session", key)
            if value is None:
                return      # the usual case: a clean start with nothing stored writes nothing
            if written_before is not None and decode_session(value).updated_at >= written_before:
                return
            self.stores.session.delete("session", key)
            self.stores.queue.delete_prefix("queue", queue_prefix(client_id))

    def restore_session(self, record: SessionRecord, announce: bool = True) -> Session | None:
        """Recreate a persisted session here, offline; None when it has expired.
        A record still marked connected lost its worker: it went offline now.
        Without announce, its routes reach the other workers otherwise (TOOK)."""
        now = time.time()
        since = now if record.connected else (record.disconnected_at or record.updated_at)
        if record.expiry_interval is not None and since + record.expiry_interval <= now:
            self.discard_stored_session(record.client_id)
            return None
        session = self.new_session(record.client_id, record.protocol_level, record.expiry_interval)
        session.restore_subscriptions({f: SubOptions.from_record(o)
                                       for f, o in record.subscriptions.items()}, announce)
        self.stores.queue.invalidate("queue", session.queue.prefix)
        session.queue.load()
        session.take_released()
        session.disconnected_at = since
        if record.expiry_interval is not None:
            remaining = max(0.0, since + record.expiry_interval - now)
            session.expire_in(remaining)
        session.store_record()
        return session
