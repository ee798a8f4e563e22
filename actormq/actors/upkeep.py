"""A worker's periodic upkeep: the keepalive sweep (a connection silent past
its deadline, or without CONNECT past `mqtt.connect_timeout`, is closed) and
the time value it compares that clients accepted together share, the drop
report, the local counters and the $SYS publisher. A base class of Broker.
"""

from __future__ import annotations

import asyncio
import time

from actormq.actors.messages import Message
from actormq.actors.sys_topics import sum_stats, sys_messages

KEEPALIVE_SWEEP_SECONDS = 0.25
# connections looked at between two visits of the event loop: a sweep of 100,000
# in one go held every client of the worker back 18 ms (measured), 1,000 take
# about 0.2 ms
SWEEP_SLICE = 1000
# $SYS messages routed between two visits of the event loop: all 80 in one go
# held every client back 150 µs (-w 1) to 300 µs (-w 2) once per sys_interval,
# up to 0.9 ms when the caches were cold (measured, 2-core machine)
SYS_SLICE = 16
# seconds: clients accepted or connected this close together share one time
# value (a float each costs an idle client 24 bytes); the keepalive sweep runs
# every KEEPALIVE_SWEEP_SECONDS anyway
SEEN_RESOLUTION = 0.01


class Upkeep:
    """The periodic half of a Broker (uses its connections, sessions, router,
    retained store, stats and settings)."""

    seen_at = 0.0       # the last-seen time the clients share (see SEEN_RESOLUTION)

    def seen(self) -> float:
        """Now on the monotonic clock, as a time value the clients accepted or
        connected within SEEN_RESOLUTION share (a read stamps its own)."""
        now = time.monotonic()
        if now - self.seen_at > SEEN_RESOLUTION:
            self.seen_at = now
        return self.seen_at

    async def _keepalive_sweep(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SWEEP_SECONDS)
            self.drops.report()
            connections = list(self.connections)
            for start in range(0, len(connections), SWEEP_SLICE):
                if start:
                    await asyncio.sleep(0)      # let the clients' reads and writes in
                now = time.monotonic()
                for conn in connections[start:start + SWEEP_SLICE]:
                    deadline = conn.keepalive_deadline
                    # before its CONNECT a connection has connect_timeout from the accept, whatever it sends
                    since = conn.last_seen if conn.session is not None else conn.accepted_at
                    if deadline and now - since > deadline and not conn.closed:
                        conn.keepalive_expired()

    def _count_offline(self) -> None:
        self.stats.clients_connected = len(self.connections)
        self.stats.clients_disconnected = sum(1 for s in self.sessions.values() if not s.online)
        self.stats.subscriptions = self.router.subscription_count
        self.stats.retained = len(self.retained)

    def local_stats(self) -> dict:
        self._count_offline()
        return self.stats.as_dict() | self.packets.flat()

    async def _sys_publisher(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sys_interval)
            totals = sum_stats(self.local_stats(), self.peer_stats)
            for at, (topic, payload) in enumerate(sys_messages(totals, self.started)):
                if at and not at % SYS_SLICE:
                    await asyncio.sleep(0)      # let the clients' reads and writes in
                message = Message(topic, payload, 0, True, {}, None, time.time(), "")
                self.retained.retain(message, persist=False)
                self.router.route(message, from_peer=True)
