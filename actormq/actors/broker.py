"""The Broker: the directory of one worker's actors and the glue between them.

Owns the worker's session table (client id → Session), its open connections,
the Router, the retained store, the counters and the batched socket flush;
the sessions kept in the store are `stored_sessions.py`, the keepalive
sweep and the $SYS publisher `upkeep.py` (its base classes). Sessions and
connections reach each other and the router only through it. Cross-worker
concerns (takeover, route deltas, node-wide retained and counters) go through
the `peers` link when the worker has peers.
"""

from __future__ import annotations

import asyncio
import logging
import time

from actormq.actors.drops import Drops
from actormq.actors.idle_session import IdleSession
from actormq.actors.messages import Message, SubOptions
from actormq.actors.packet_counts import PacketCounts
from actormq.actors.queue import DISC_ONLY_WINDOW, Queue, QueueLimits
from actormq.actors.retain import RetainedStore
from actormq.actors.routed import Routed, congestion, join
from actormq.actors.router import Router
from actormq.actors.session import Session
from actormq.actors.settings import BrokerSettings
from actormq.actors.stored_sessions import StoredSessions
from actormq.actors.sys_topics import Stats
from actormq.actors.upkeep import Upkeep
from actormq.logsetup import LineBatch
from actormq.reload import Reloader
from actormq.hooks import DROP, DropReason, Hooks
from actormq.transport.codec import ReasonCode
from actormq.transport.topics import parse_shared

log = logging.getLogger("actormq.broker")

# what a lone message (one packet in a client's read, one message in a bus
# frame) causes goes out at once when no loop round wrote for this long; under
# load every write of a round waits for its end, in one write per connection
QUIET_WRITE_SECONDS = 0.0003
RELOADABLE_KEYS = ("mqtt.", "log.connections", "queue.max_inflight", "queue.max_online_messages",
                   "queue.max_offline_messages", "queue.type", "queue.drop")


class Broker(StoredSessions, Upkeep):
    """Everything one worker runs, wired together on its event loop."""

    def __init__(self, config, loop: asyncio.AbstractEventLoop, stores=None, worker_id: int = 0,
                 worker_count: int = 1) -> None:
        self.config = config
        self.settings = BrokerSettings.from_config(config)
        self.loop = loop
        self.stores = stores
        self.worker_id = worker_id
        self.worker_count = worker_count
        self.started = time.time()
        self.stats = Stats()
        self.packets = PacketCounts()        # packets and bytes in and out by type
        self.hooks = Hooks()                 # the worker's plugins (none until it loads them)
        self.sessions: dict[str, Session] = {}
        self.forwarders: dict = {}           # client id -> Forwarder of a session that moved away
        self.durable_sessions = 0            # sessions whose queue is written to disc (see durability)
        self.connections: set = set()
        self.peers = None                    # PeerLink when the node has other workers
        self.peer_stats: dict[int, dict] = {}
        self.drops = Drops(self)
        self.banned = None                   # mgmt.banned.BanList while any ban is in force
        self.writer_backlogs: tuple = ()     # storage.backlog.WriterBacklog of each disc store
        self.router = Router(worker_id, self.sessions, self._send_to_worker, self._route_changed,
                             self.forwarders)
        self.retained = self._make_retained_store()
        self._dirty: list = []
        self._flushed_at = 0.0               # when the last loop round's output went out
        self.lone = False                    # the read (or bus frame) at hand holds one message
        self._tasks: list = []
        self._queue_limits = self._make_queue_limits()
        self.idle_queue = Queue("", self._queue_limits)  # what every memory queue is until it holds one
        self._decoders: dict[tuple, object] = {}   # (version, max packet size) -> shared decoder
        self._schedule_queue_flush = self.schedule_flush     # one bound method for every queue
        self.reloader = Reloader()      # config reload: parts register what they take
        self.connection_log = LineBatch("actormq.connection")
        self.reloader.on_reload(RELOADABLE_KEYS, self.reload)

    def _make_queue_limits(self) -> QueueLimits:
        settings = self.settings
        return QueueLimits(settings.max_online_messages, settings.max_offline_messages,
                           settings.queue_lifo, settings.queue_drop_oldest)

    def reload(self, config) -> None:
        """New MQTT and queue limits: connections and sessions made from now on use them."""
        self.settings = BrokerSettings.from_config(config)
        self._queue_limits = self.idle_queue.limits = self._make_queue_limits()

    def _make_retained_store(self) -> RetainedStore:
        mode = self.config.get("retained.storage", "ram")
        store = self.stores.retained if self.stores is not None and mode != "ram" else None
        return RetainedStore(store, in_memory=mode != "disc_only",
                             max_messages=self.config.get("retained.max_messages", 0),
                             max_payload_size=self.config.get("retained.max_payload_size", 0),
                             expiry_interval=self.config.get("retained.expiry_interval", 0))

    # -- life cycle ------------------------------------------------------------------

    def start(self, restore: bool = True) -> None:
        """Serve; with restore, bring back this worker's share of the persisted sessions
        (a worker restarted beside live peers leaves them to the peers, which took
        over the sessions it had)."""
        self.retained.load()
        if restore:
            self.restore_sessions()
        self._tasks.append(self.loop.create_task(self._keepalive_sweep()))
        if self.settings.sys_interval:
            self._tasks.append(self.loop.create_task(self._sys_publisher()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for conn in list(self.connections):
            conn.disconnect(ReasonCode.SERVER_SHUTTING_DOWN, "server shutting down")
        for session in list(self.sessions.values()):
            if session.online:
                session.detach(publish_will=False)
        self._flush_dirty()
        if self.stores is not None:
            await self.loop.run_in_executor(None, self.stores.flush)

    # -- sessions ----------------------------------------------------------------------

    def new_session(self, client_id: str, protocol_level: int, expiry: int | None) -> Session:
        persistent = expiry is None or expiry > 0
        session = Session(self, client_id, protocol_level, self._new_queue(client_id, persistent), expiry)
        replaced = self.sessions.get(client_id)
        if replaced is not None and replaced.queue.persistent:
            self._count_durable(-1)
        self.sessions[client_id] = session
        if session.queue.persistent:
            self._count_durable(+1)
        return session

    def _new_queue(self, client_id: str, persistent: bool) -> Queue:
        mode = self.config.get("queue.storage", "ram")
        if not persistent or self.stores is None or mode == "ram":
            return self.idle_queue      # the session makes its own at its first queued message
        return Queue(client_id, self._queue_limits, self.stores.queue, durable=True,
                     window=DISC_ONLY_WINDOW if mode == "disc_only" else None,
                     schedule=self._schedule_queue_flush)

    def shared_decoder(self, decoder):
        """The decoder that connected clients of this version and packet size limit
        share between packets (`StreamDecoder.shared`); `decoder` itself while it
        holds part of a packet."""
        if decoder.holds_partial:
            return decoder
        key = (decoder.version, decoder.max_packet_size)
        shared = self._decoders.get(key)
        if shared is None:
            shared = self._decoders[key] = decoder
            decoder.shared = True
        return shared

    def own_queue(self, client_id: str, online: bool) -> Queue:
        """A memory queue of the client's own, for a session that held the idle one."""
        queue = Queue(client_id, self._queue_limits)
        queue.online = online
        return queue

    def open_session(self, conn, connect, client_id: str, expiry) -> tuple[Session, bool]:
        """Find or create the session for a CONNECT; take it over from an older connection."""
        session = self.sessions.get(client_id)
        if session is not None and session.conn is not None:
            old = session.conn
            log.info("client %s: taken over by %s (was %s)", client_id, conn.peer, old.peer)
            old.taken_over()
            if self.hooks.session_taken_over is not None and old.client_info is not None:
                self.hooks.session_taken_over.notify(old.client_info)
            session.detach(publish_will=True)
            session = self.sessions.get(client_id)
        if session is not None and connect.clean_start:
            self.end_session(session, "discarded")
            session = None
        present = session is not None
        if session is None and expiry == 0:
            session = self.sessions[client_id] = IdleSession(conn, None)    # a Session at first use
        elif session is None:
            session = self.new_session(client_id, connect.protocol_level, expiry)
        session.reopened(expiry, connect.will)
        if present and session.persistent and not session.queue.persistent:
            self._make_queue_persistent(session)
        self.stats.clients_total_connects += 1
        return session, present

    def _make_queue_persistent(self, session: Session) -> None:
        queue = self._new_queue(session.client_id, True)
        if not queue.persistent:  # queue.storage = ram: nothing would change
            return
        old = session.replace_queue(queue)
        if self.sessions.get(session.client_id) is session:
            self._count_durable(+1)
        for delivery in old.snapshot():
            queue.enqueue(delivery)

    def _count_durable(self, delta: int) -> None:
        """A session with a disc queue came or went: the other workers ask this
        one for durability answers only while it has some (see durability)."""
        self.durable_sessions += delta
        holding = self.durable_sessions > 0
        if self.peers is not None and holding != (self.durable_sessions - delta > 0):
            self.peers.acks.holding_changed(holding)

    def release_session(self, session: Session) -> None:
        """The session moved to another worker: forget it here."""
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
            if session.queue.persistent:
                self._count_durable(-1)
        session.release()

    def end_session(self, session: Session, reason: str = "normal") -> None:
        """The session is over: `reason` is "normal" (its client left and it was not
        persistent), "discarded" (a clean start replaced it) or "expired"."""
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
            if session.queue.persistent:
                self._count_durable(-1)
            if self.peers is not None:
                self.peers.session_ended(session.client_id)
        session.end()
        if self.hooks.active:
            self._session_ended(session.client_id, reason)

    def _session_ended(self, client_id: str, reason: str) -> None:
        hooks = self.hooks
        if reason == "discarded" and hooks.session_discarded is not None:
            hooks.session_discarded.notify(client_id)
        if reason == "expired" and hooks.session_expired is not None:
            hooks.session_expired.notify(client_id)
        if hooks.session_terminated is not None:
            hooks.session_terminated.notify(client_id, reason)

    def set_banned(self, banned) -> None:
        """The bans in force (checked at CONNECT); None while nothing is banned."""
        self.banned = banned

    def connection_opened(self, conn) -> None:
        self.connections.add(conn)

    def connection_closed(self, conn) -> None:
        self.connections.discard(conn)

    # -- authentication and authorization (the hook chain plugs in here) -------------

    def authenticate(self, connect, peer: str) -> int:
        if not self.settings.allow_anonymous and connect.username is None:
            return ReasonCode.NOT_AUTHORIZED
        return 0

    def authorize_publish(self, session: Session, topic_name: str) -> bool:
        return True

    def authorize_subscribe(self, session: Session, topic_filter: str) -> bool:
        return True

    # -- messages ------------------------------------------------------------------------

    def hold_back_for(self, writer_backlogs: tuple) -> None:
        """A publish that writes to a store whose writer is behind holds its
        publisher back (see storage.backlog)."""
        self.writer_backlogs = writer_backlogs

    def publish(self, message: Message) -> Routed:
        """Route a message (and keep it when retained); returns what routing did."""
        if message.retain:
            if self.retained.retain(message) and self.peers is not None:
                self.peers.retained_changed(message)
        routed = self.router.route(message)
        if routed.durable and self.writer_backlogs:
            for backlog in self.writer_backlogs:
                if backlog.behind:   # rare: make the tuple only then
                    behind = tuple(backlog for backlog in self.writer_backlogs if backlog.behind)
                    return join(routed, congestion(behind))
        return routed

    def when_durable(self, acks: tuple, callback, on_error=None) -> None:
        """Run callback on this worker's loop once what publishes wrote is
        committed, by this worker's store and by the workers whose answers
        they await (`acks`: their `Routed.acks`). Callbacks run in the order
        of the calls."""
        if self.peers is not None:
            self.peers.acks.when_durable(acks, callback, on_error)
        elif self.stores is not None:
            self.stores.queue.when_durable(callback, on_error, self.loop)
        else:
            callback()

    def publish_will(self, client_id: str, will) -> None:
        props = {k: v for k, v in will.properties.items()
                 if k in ("payload_format_indicator", "content_type", "response_topic",
                          "correlation_data", "user_property")}
        now = time.time()
        expiry = will.properties.get("message_expiry_interval")
        message = Message(will.topic_name, will.payload, will.qos, will.retain, props,
                          now + expiry if expiry is not None else None, now, client_id)
        chain = self.hooks.message_will
        if chain is not None:
            folded = chain.fold(client_id, message)
            if isinstance(folded, asyncio.Future):
                folded.add_done_callback(lambda done: self._publish_folded_will(client_id, message,
                                                                                done.result()))
                return
            self._publish_folded_will(client_id, message, folded)
            return
        log.debug("client %s: publishing will on %s", client_id, will.topic_name)
        self.publish(message)

    def _publish_folded_will(self, client_id: str, original: Message, message) -> None:
        hooks = self.hooks
        if message is DROP:
            if hooks.message_dropped is not None:
                hooks.message_dropped.notify(client_id, original, DropReason.BY_PLUGIN)
            return
        log.debug("client %s: publishing will on %s", client_id, message.topic_name)
        self.publish(message)
        if hooks.message_will_published is not None:
            hooks.message_will_published.notify(client_id, message)

    def send_retained(self, session: Session, topic_filter: str, opts: SubOptions) -> None:
        if opts.share_group is not None:
            return      # retained messages are not sent to shared subscriptions
        _group, real_filter = parse_shared(topic_filter)
        sub_ids = opts.subscription_ids
        for message in self.retained.match(real_filter):
            session.deliver(message, min(opts.qos, message.qos), True, sub_ids, {})

    def _send_to_worker(self, worker_id: int, message: Message, target) -> int | None:
        """The ack id the peer will answer (see durability), or None."""
        if self.peers is not None:
            return self.peers.forwarding.send_message(worker_id, message, target)
        return None

    def _route_changed(self, route_filter: str, delta: int) -> None:
        if self.peers is not None:
            self.peers.route_changed(route_filter, delta)

    # -- socket flush batching -------------------------------------------------------------

    def schedule_flush(self, buffered) -> None:
        """Flush a connection's output or a queue's deletes at the end of this loop round."""
        dirty = self._dirty
        if not dirty:
            self.loop.call_soon(self._flush_dirty)
        dirty.append(buffered)

    def write_at_once(self) -> bool:
        """Whether a connection's first output of this loop round goes out at
        once (True: the caller flushes it) rather than at the end of the round
        (its `flush` is scheduled). At once only for a lone message (`lone`)
        when no round wrote for QUIET_WRITE_SECONDS: it does not wait for the
        rest of the round's work (its publisher's PUBACK, the bus read that
        finds nothing more). Reads of several messages, and busy rounds, keep
        one write per connection and round."""
        if self.lone and not self._dirty:
            now = time.monotonic()
            if now - self._flushed_at > QUIET_WRITE_SECONDS:
                self._flushed_at = now
                return True
        return False

    def _flush_dirty(self) -> None:
        dirty = self._dirty
        self._dirty = []
        self._flushed_at = time.monotonic()
        for buffered in dirty:
            buffered.flush()
