"""The session of a clean client that has not used a session's state yet
(`IdleSession`): MQTT 3.1.1 clean session, or 5.0 with session expiry 0,
that has not subscribed, published or acknowledged anything. It holds its
connection and will (48 bytes; a Session holds 26 slots, 240) and reads
what it is asked from the connection and the broker. The first packet that
needs a session's state (PUBLISH, an acknowledgement, SUBSCRIBE,
UNSUBSCRIBE), a plugin's session limits or an operator's subscription makes
the client's Session (`in_use`), which takes its place in the broker's
session table and on the connection. A PINGREQ or DISCONNECT does not.

Takes: attach / detach of its connection, the client's DISCONNECT. Sends:
the will to the Broker, the end of the session.
"""

from __future__ import annotations

from actormq.actors.session import NONE_YET, Session


class IdleSession:
    """What a connected clean client that uses no session state holds; anything
    else a Session has makes the Session (see `__getattr__`)."""

    __slots__ = ("conn", "will")

    idle = True
    persistent = False
    expiry_interval = 0
    subscriptions = NONE_YET
    disconnected_at = None
    deliveries_held = None
    ack_batch = None
    drain_due = False
    overrun = False
    next_packet_id = 1
    qos2_in = awaiting_pubcomp = ()

    def __init__(self, conn, will) -> None:
        self.conn = conn
        self.will = will

    def __getattr__(self, name: str):
        # what an IdleSession does not answer itself, the client's Session does:
        # whoever asks for it uses the session now
        return getattr(self.in_use(), name)

    def in_use(self) -> Session:
        """The client's Session, made now if it is not yet (it replaces this one)."""
        conn = self.conn
        if conn is None:
            raise RuntimeError("the session has ended")
        if conn.session is not self:
            return conn.session
        broker = conn.broker
        session = Session(broker, conn.client_id, conn.version, broker.idle_queue, 0)
        session.reopened(0, self.will)
        if broker.sessions.get(conn.client_id) is self:
            broker.sessions[conn.client_id] = session
        conn.session = session
        session.attach(conn, False)
        return session

    # -- what readers ask (the connection's and the broker's) ------------------------

    @property
    def client_id(self) -> str:
        return self.conn.client_id if self.conn is not None else ""

    @property
    def online(self) -> bool:
        return self.conn is not None

    @property
    def version(self) -> int:
        return self.conn.version

    @property
    def mountpoint(self) -> str:
        return self.conn.mountpoint

    @property
    def receive_maximum(self) -> int:
        return self.conn.client_receive_maximum

    @property
    def max_inflight(self) -> int:
        return self.conn.broker.settings.max_inflight

    @property
    def queue(self):
        return self.conn.broker.idle_queue

    @staticmethod
    def inflight_count() -> int:
        return 0

    @staticmethod
    def inflight_items() -> list:
        return []

    # -- its life ------------------------------------------------------------------------

    def reopened(self, expiry_interval: int | None, will) -> None:
        if expiry_interval:
            self.in_use().reopened(expiry_interval, will)
            return
        self.will = will

    def attach(self, conn, _session_present: bool) -> None:
        self.conn = conn

    def client_disconnected(self, decision) -> None:
        """The client's DISCONNECT: its will dropped unless it asked to keep it."""
        if decision.expiry_changed and decision.expiry != 0:
            self.in_use().client_disconnected(decision)
            return
        if not decision.keep_will:
            self.will = None

    def detach(self, publish_will: bool) -> None:
        """The connection went away: the will (a session that ends with its
        connection has no will delay [MQTT-3.1.3-9]), then the session ends."""
        broker = self.conn.broker
        will, self.will = self.will, None
        if will is not None and publish_will:
            broker.publish_will(self.conn.client_id, will)
        broker.end_session(self)
        self.conn = None

    def drain(self) -> None:
        """Nothing is queued."""

    def store_record(self) -> None:
        """Not persistent: nothing is stored."""

    def end(self) -> None:
        """Nothing to unsubscribe, clear or delete."""

    def release(self) -> None:
        """Nothing to hand over."""
