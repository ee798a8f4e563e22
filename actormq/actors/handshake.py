"""The CONNECT handshake of a Connection, once its Channel accepted the
CONNECT (`effects.Accept`: the protocol's checks passed): bans and
authentication, the hook chain when plugins listen, the claim of the client
id from the other workers (takeover / hand-over), then the session opened
and the CONNACK (its properties: `Channel.accept_session`) sent. A base class
of Connection.

Takes: the Channel's Accept. Sends: a refusing CONNACK and close, or CONNACK
after the Broker opened (or took over) the session; the connection log line.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from actormq.actors import hooked
from actormq.actors.channel import session_expiry
from actormq.actors.effects import Accept
from actormq.transport import mountpoint as mounts
from actormq.transport.codec import Connack, Connect, ReasonCode

log = logging.getLogger("actormq.connection")

CONNECTION_LOG_DELAY = 0.1  # seconds: connection log lines are written in batches

_KEPT: dict[tuple, Connect] = {}    # the kept CONNECTs that clients share
_KEPT_MAX = 1024


def kept_connect(packet: Connect) -> Connect:
    """What the connection keeps of its accepted CONNECT for operators and hooks
    (username, password, version, clean start, keepalive, properties; the client
    id is the connection's, the will the session's): clients whose CONNECT says
    the same share one copy (a device fleet connects alike), unless it carries a
    password or properties."""
    if packet.password is not None or packet.properties:
        return replace(packet, client_id="", will=None)
    key = (packet.protocol_level, packet.protocol_name, packet.clean_start, packet.keepalive, packet.username)
    kept = _KEPT.get(key)
    if kept is None:
        kept = replace(packet, client_id="", will=None)
        if len(_KEPT) < _KEPT_MAX:
            _KEPT[key] = kept
    return kept


class ConnectHandshake:
    """The handshake half of a Connection (uses its broker, settings, listener,
    hooks, decoder and the sending methods)."""

    __slots__ = ()

    @property
    def connected_at(self) -> float:
        """The wall time of the accepted CONNECT (0.0 before): the time it arrived, kept
        on the monotonic clock as `accepted_at`, so a connection holds one time."""
        if self.session is None:
            return 0.0
        return time.time() - (time.monotonic() - self.accepted_at)

    def _accepted(self, accept: Accept) -> None:
        packet, assigned = accept.connect, accept.assigned
        self.decoder.version = packet.protocol_level
        if self.listener.use_identity_as_username:
            packet = replace(packet, username=self.cn)
        refusal = self._refusal(packet)
        if refusal:
            log.info("peer %s client %r refused: 0x%02X", self.peer, packet.client_id, refusal)
            self.send_packet(Connack(False, refusal))
            self.close(linger=True)
            return
        self.client_id = assigned or packet.client_id
        if self.listener.mountpoint:
            self.mountpoint = mounts.expand(self.listener.mountpoint, self.client_id, packet.username)
            packet = mounts.mount_will(packet, self.mountpoint)
        if self.hooks.active:
            hooked.connect(self, packet, assigned)
            return
        self.connect_allowed(packet, assigned)

    def connect_allowed(self, packet: Connect, assigned: str | None) -> None:
        """The CONNECT is accepted: claim the client id from the other workers, open the session."""
        peers = self.broker.peers
        if peers is None or peers.claim_at_once(
                self.client_id, packet.clean_start,
                packet.clean_start and session_expiry(packet, self.settings) == 0):
            self._open_session(packet, assigned)
            return
        self.throttle()
        self.broker.loop.create_task(self._claim_then_open(peers, packet, assigned))

    async def _claim_then_open(self, peers, packet: Connect, assigned: str | None) -> None:
        """Take the client id from the other workers first (takeover / handover)."""
        try:
            await peers.claim(self.client_id, packet.clean_start)
            if self.closed:
                return
            self._open_session(packet, assigned)
        finally:
            peers.claim_done(self.client_id)
        self.unthrottle()       # take the packets held while waiting

    def _open_session(self, packet: Connect, assigned: str | None) -> None:
        props = self.accept_session(packet, assigned)
        self.connect_packet = kept_connect(packet)
        # the time of the CONNECT now, as a value clients connecting together share
        # (a float of its own costs an idle client 24 bytes, until its next packet)
        self.accepted_at = self.last_seen = self.broker.seen()
        self.decoder = self.broker.shared_decoder(self.decoder)
        session, present = self.broker.open_session(self, packet, self.client_id, self.expiry)
        self.session = session
        if self.client_info is not None and (self.hooks.opened_hooked or self.limits or self.auth_props):
            # only what a plugin asked for: a plain authentication notifies nothing
            hooked.session_opened(self, session, present, props)
        self.send_packet(Connack(present, 0, props))
        if self.settings.log_connections and log.isEnabledFor(logging.INFO):
            self._log_connection(
                f"client {self.client_id} connected from {self.peer}: MQTT v{self.version}, "
                f"clean start {packet.clean_start:d}, "
                f"{'persistent' if session.persistent else 'clean'} session, "
                f"session present {present:d}, keepalive {packet.keepalive}")
        self.session.attach(self, present)     # a plugin's limits may have made the Session
        if self.client_info is not None and self.hooks.opened_hooked:
            hooked.connected(self)

    def _log_connection(self, line: str) -> None:
        """One line of the connection log (info), written within CONNECTION_LOG_DELAY."""
        batch = self.broker.connection_log
        if batch.add(line):
            self.broker.loop.call_later(CONNECTION_LOG_DELAY, batch.flush)

    def _refusal(self, packet: Connect) -> int:
        """The refusal reason (0: none) of bans and authentication."""
        banned = self.broker.banned
        if banned is not None and banned.refuses(packet.client_id, packet.username, self.peer):
            return ReasonCode.BANNED
        return self.broker.authenticate(packet, self.peer)
