"""The Connection: one per socket. Owns the byte stream and its decoder, the
outbound buffer, and carries out the effects (`effects.py`) its protocol core
returns (`channel.Channel`, a base class: pure; it keeps the client's
version, limits, topic aliases, keepalive and session expiry). Its CONNECT
handshake is `handshake.py`, the holding of its packets while a decision for
it is pending `holding.py` (both base classes).

Takes: bytes from the socket, packets and encoded PUBLISH bytes to send (from
its Session). Sends: decoded packets to its Channel, their effects to its
Session (route a PUBLISH, acks, subscriptions), CONNECT to the Broker.
A protocol error closes the connection (3.1.1) or answers DISCONNECT with the
error's reason code first (5.0); it never affects another connection. After a
server DISCONNECT (or a refusing CONNACK) the socket is half-closed and what
the client still sends is discarded for at most DISCONNECT_LINGER seconds, so
the client reads the reason instead of a reset. Reason strings are bounded
and left out when they would not fit the client's maximum packet size.

The CONNECT must arrive within `mqtt.connect_timeout` of the accept (the
broker's keepalive sweep counts from `accepted_at`), and the decoder buffers
at most `mqtt.max_connect_packet_size` bytes before it. With
`log.connections` on, every connect and disconnect of a client is logged at
info.

The same Connection serves every listener type: its transport is the
socket's, the TLS one or a WebSocket (`transport.websocket`). It knows its
`listener` (name, type, options), the client's address (`peer_host`,
`peer_port`: from a PROXY header or X-Forwarded-For when the listener takes
them), the client certificate's `cn` and `dn`, and the `mountpoint` its
topics live under (`transport.mountpoint`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial

from actormq.actors import channel, effects, hooked
from actormq.actors.channel import Channel
from actormq.actors.handshake import ConnectHandshake
from actormq.actors.holding import PacketHold
from actormq.actors.pipeline import Pipeline
from actormq.actors.session import Session, message_from_publish
from actormq.errors import ProtocolError
from actormq.transport.codec import (Connect, Disconnect, PacketType, Puback, Pubcomp, Publish, Pubrec,
                                     Pubrel, ReasonCode, StreamDecoder, Subscribe, Unsubscribe, encode,
                                     encode_publish)
from actormq.transport.listeners import DEFAULT_LISTENER
from actormq.transport.peer import PeerInfo

log = logging.getLogger("actormq.connection")

FLUSH_EVERY = 32  # messages: write them out now instead of at the end of the loop round
DISCONNECT_LINGER = 2.0     # seconds a half-closed socket discards input before it closes
NOTHING_TO_SEND = ()        # the outbound buffer between flushes: an idle client holds no list
_PUBACK, _PUBREC = int(PacketType.PUBACK), int(PacketType.PUBREC)


class _DiscardInput:
    """The decoder of a connection that is closing: input is read and dropped."""

    __slots__ = ()
    bytes_in = 0
    version = None
    shared = False

    @staticmethod
    def feed(_data: bytes) -> tuple:
        return ()


class Connection(Channel, ConnectHandshake, PacketHold, PeerInfo, asyncio.Protocol):
    """The protocol shell of one client socket (its protocol core, its CONNECT
    handshake and the holding of its packets are in the base classes)."""

    # Slots: an idle client costs its attributes, not an instance dict (past 30
    # attributes the interpreter stops sharing the keys and each instance held
    # a 1.5 KB dict). Channel's slots keep `__dict__` for what tracing patches in.
    __slots__ = ("broker", "peer_address", "decoder", "_sent", "_sent_bytes", "transport",
                 "client_id", "accepted_at", "last_seen", "writable", "closed", "_out",
                 "_clean_disconnect", "_close_reason", "received", "_held", "_pending",
                 "pipeline", "mountpoint", "connect_packet")

    # Set for few clients (see Channel): class defaults until then.
    slot = None             # its place in the listener's limit (serve.Slot), when it has one
    _taken_over = False
    client_info = None      # the hooks' ClientInfo, made when a hook needs it
    publish_memo = None     # (chain, topics allowed until), see hooked.publish
    limits = None           # session limits a plugin set at CONNECT
    auth_props = None       # authentication method / data of the CONNACK

    def __init__(self, broker, listener=DEFAULT_LISTENER, peer_address: tuple | None = None,
                 slot=None) -> None:
        Channel.__init__(self, broker.settings, listener, broker.hooks)
        self.broker = broker
        self.peer_address = peer_address    # None: the socket's peer
        if slot is not None:
            self.slot = slot
        packets = broker.packets
        self.decoder = StreamDecoder(self.settings.max_packet_size,
                                     self.settings.max_connect_packet_size,
                                     packets.received, packets.received_bytes)
        self._sent, self._sent_bytes = packets.sent, packets.sent_bytes
        self.transport = None
        self.client_id = ""
        self.accepted_at = self.last_seen = broker.seen()
        self.writable = True
        self.closed = False
        self._out: list[bytes] | tuple = NOTHING_TO_SEND     # a list while a flush is due
        self._clean_disconnect = False
        self._close_reason = ""
        self.received = 0
        self._held: list | None = None      # packets that arrived while a CONNECT waits on peers
        self._pending = None                # the hook chain answer this client waits for
        self.pipeline: Pipeline | None = None  # PUBLISH outcomes waiting, in order (see pipeline)
        self.mountpoint = ""
        self.connect_packet: Connect | None = None  # handshake.kept_connect: client info for operators

    @property
    def clean_disconnect(self) -> bool:
        return self._clean_disconnect

    @property
    def was_taken_over(self) -> bool:
        return self._taken_over

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport) -> None:
        # both uvloop and asyncio set TCP_NODELAY on accepted sockets
        self.transport = transport
        self.broker.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        self.broker.stats.bytes_received += len(data)
        decoder = self.decoder
        try:
            packets = decoder.feed(data)
            if decoder.shared:
                self.decoder = decoder.own_tail()
            self._handle(packets)
        except ProtocolError as exc:
            self.protocol_error(exc)

    def _handle(self, packets: list) -> None:
        self.broker.lone = len(packets) == 1
        for index, packet in enumerate(packets):
            if self.closed:
                return
            if self._held is not None:
                self._hold(packets[index:])
                return
            effect = self.handle(packet)
            kind = type(effect)     # what execute does, without the call (hot path)
            if kind is Publish:
                self._route(effect)
            else:
                handler = _SESSION_HANDLERS.get(kind)
                if handler is not None:
                    session = self.session
                    handler(session if not session.idle else session.in_use(), effect)
                else:
                    _EXECUTE[kind](self, effect)
        session = self.session
        if session is not None and not self.closed:
            if session.ack_batch is not None:
                session.release_acks()  # one durability wait for the PUBLISHes of this read
            if session.drain_due:
                session.drain()   # once for all the acks of this read

    def connection_lost(self, exc) -> None:
        if self._held and not self.closed:
            self.take_held_at_close()
        self.closed = True
        if self.slot is not None:
            self.slot.release()
        self.broker.connection_closed(self)
        session = self.session
        if session is None or session.conn is not self:
            return
        if self.hooks.closed_hooked:
            hooked.client_closed(self, session, exc)
        if self.settings.log_connections and log.isEnabledFor(logging.INFO):
            reason = self._close_reason or (f"connection lost ({exc})" if exc else "closed by client")
            self._log_connection(f"client {self.client_id} ({self.peer}) disconnected: {reason}, "
                                 f"{self.received} packets received")
        session.detach(publish_will=not self._clean_disconnect)

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        if self.session is not None and self.session.conn is self:
            self.session.drain()

    # -- sending --------------------------------------------------------------------

    def send_bytes(self, data: bytes, messages: int = 0) -> None:
        if self.closed:
            return
        out = self._out
        at_once = False
        if out:
            out.append(data)
        elif self.broker.write_at_once():
            at_once = True
            self._out = out = [data]
        else:
            self.broker.schedule_flush(self)
            self._out = out = [data]
        kind = data[0] >> 4     # one packet per call
        self._sent[kind] += 1
        self._sent_bytes[kind] += len(data)
        if messages:
            self.broker.stats.messages_sent += messages
            if len(out) >= FLUSH_EVERY:
                # the client starts on these while the rest of the round is
                # encoded (a window of QoS 1 messages is a pipeline, not a
                # ping-pong), and pause_writing sees a full socket in time
                self.flush()
        if at_once:
            self.flush()

    def send_acks(self, data: bytes) -> None:
        """PUBACKs and PUBRECs of 4 bytes each, back to back (the acknowledgements
        a commit released): written now, after what is buffered, and counted as
        send_bytes counts each."""
        if self.closed:
            return
        kinds = data[::4]
        pubrecs = kinds.count(_PUBREC << 4)
        pubacks = len(kinds) - pubrecs
        self._sent[_PUBACK] += pubacks
        self._sent_bytes[_PUBACK] += 4 * pubacks
        if pubrecs:
            self._sent[_PUBREC] += pubrecs
            self._sent_bytes[_PUBREC] += 4 * pubrecs
        if self._out:
            self._out.append(data)
            self.flush()
        else:
            self.broker.stats.bytes_sent += len(data)
            self.transport.write(data)

    def flush(self) -> None:
        out = self._out
        self._out = NOTHING_TO_SEND
        if not out or self.closed:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        self.broker.stats.bytes_sent += len(data)
        self.transport.write(data)

    def send_packet(self, packet) -> None:
        props = getattr(packet, "properties", None)
        if props and "reason_string" in props:
            self.send_bytes(channel.encode_with_reason(packet, self.version, self.problem_info,
                                                       self.max_packet_out))
        else:
            self.send_bytes(encode(packet, self.version))

    def send_publish(self, message, qos: int, retain: bool, packet_id, dup: bool,
                     sub_ids: tuple = ()) -> bool:
        """Encode and send one PUBLISH; False when it exceeds the client's maximum packet size."""
        version = self.version
        topic = message.topic_name
        if self.mountpoint and topic.startswith(self.mountpoint):
            topic = topic[len(self.mountpoint):]
        props = None
        new_alias = None
        if version == 5:
            props = message.properties
            if sub_ids or message.expires_at is not None or self.alias_out is not None:
                props = dict(props)
                if sub_ids:
                    props["subscription_identifier"] = list(sub_ids)
                if message.expires_at is not None:
                    props["message_expiry_interval"] = message.remaining_expiry(time.time())
                if self.alias_out is not None:
                    alias, new = self.alias_out.lookup(topic)
                    if alias is not None:
                        props["topic_alias"] = alias
                        if new:
                            new_alias = alias
                        else:
                            topic = ""
        data = encode_publish(topic, message.payload, qos, retain, dup, packet_id, props, version)
        if self.max_packet_out and len(data) > self.max_packet_out:
            self.broker.drops.count(self.client_id, message, "too_large")
            return False
        if new_alias is not None:
            self.alias_out.learned(topic, new_alias)
        self.send_bytes(data, 1)
        return True

    def disconnect(self, reason_code: int, reason_string: str | None = None) -> None:
        """Server-initiated close: DISCONNECT with a reason code first in 5.0."""
        if self.closed:
            return
        if not self._close_reason:
            self._close_reason = reason_string or f"reason 0x{reason_code:02X}"
        if self.version == 5 and self.session is not None:
            self.send_packet(Disconnect(reason_code, channel.reason(reason_string, self.problem_info)))
            self.close(linger=True)
            return
        self.close()

    def close(self, linger: bool = False) -> None:
        """Close the socket; with linger, after what was sent: half-close, discard the
        client's input until it closes too or DISCONNECT_LINGER has passed."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        transport = self.transport
        if transport is None:
            return
        if not linger or not transport.can_write_eof() or transport.is_closing():
            transport.close()
            return
        transport.write_eof()
        self.decoder = _DiscardInput()
        if self._held is not None:
            self._held = None
            transport.resume_reading()
        self.broker.loop.call_later(DISCONNECT_LINGER, transport.close)

    def protocol_error(self, exc: ProtocolError) -> None:
        if self.session is None or not self.settings.log_connections:
            # else the disconnect line of the connection log says it
            log.info("client %s (%s): protocol error 0x%02X %s, closing", self.client_id or "-",
                     self.peer, exc.reason_code, exc.detail)
        if self.session is not None:
            self._close_reason = f"protocol error 0x{exc.reason_code:02X} {exc.detail}"
        self.execute(self.on_protocol_error(exc, self.decoder.version))

    def taken_over(self) -> None:
        """Another connection took this client id: close this one (5.0: reason 0x8E)."""
        self._taken_over = True
        self._close_reason = "taken over"
        self.execute(self.on_taken_over())

    def keepalive_expired(self) -> None:
        if self.session is None:
            log.info("peer %s sent no CONNECT in time, closing", self.peer)
        elif not self.settings.log_connections:
            log.info("client %s (%s): keepalive timeout, closing", self.client_id, self.peer)
        self.execute(self.on_keepalive_expired())

    # -- carrying out effects ------------------------------------------------------------

    def execute(self, effect) -> None:
        """Carry out one effect of the Channel (see effects)."""
        kind = type(effect)
        if kind is Publish:
            self._route(effect)
        elif kind in _SESSION_HANDLERS:
            session = self.session
            _SESSION_HANDLERS[kind](session if not session.idle else session.in_use(), effect)
        else:
            _EXECUTE[kind](self, effect)

    def _send(self, effect: effects.Send) -> None:
        self.send_packet(effect.packet)

    def _send_bytes(self, effect: effects.SendBytes) -> None:
        self.send_bytes(effect.data)

    def _close(self, effect: effects.Close) -> None:
        if effect.reason_code:
            self.disconnect(effect.reason_code, effect.reason)
        else:
            self.close(linger=bool(self._out))

    def _refuse(self, effect: effects.Refuse) -> None:
        reply = effect.reply
        if effect.client_id is not None:
            log.info("peer %s client %r refused: 0x%02X", self.peer, effect.client_id, reply.reason_code)
        if type(reply) is bytes:
            self.send_bytes(reply)
        else:
            self.send_packet(reply)
        self.close(linger=True)

    def _route(self, packet: Publish) -> None:
        """A client's PUBLISH, checked by the Channel: authorize, make the Message, route it."""
        self.received += 1
        self.broker.stats.messages_received += 1
        topic = packet.topic_name
        if not self.broker.authorize_publish(self.session, topic):
            self.in_order(ReasonCode.NOT_AUTHORIZED, partial(self.refuse_publish, packet))
            return
        message = message_from_publish(packet, self.client_id, time.time())
        if self.hooks.publish_hooked or self.mountpoint:
            chain = self.hooks.publish_folds
            if chain is None or self.mountpoint or packet.qos == 2 or self.pipeline is not None:
                hooked.publish(self, packet, message)
                return
            # the common shape, inline: ``message.publish`` alone, and it kept the message
            folded = chain.fold(self.client_info or hooked.info_of(self), message)
            if folded is not message:
                hooked.publish_folded(self, packet, message, folded)
                return
        elif self.pipeline is not None:
            # the chain was switched off while earlier PUBLISHes of this client still wait
            self.in_order(message, partial(self.route_publish, packet))
            return
        self.route_publish(packet, message)

    def route_publish(self, packet, message) -> None:
        congested = self.session.handle_publish(packet, message).congested
        if congested:
            for party in congested:
                party.block(self)

    def refuse_publish(self, packet, reason_code: int) -> None:
        if packet.qos == 1:
            self.send_packet(Puback(packet.packet_id, reason_code if self.version == 5 else 0))
        elif packet.qos == 2:
            self.send_packet(Pubrec(packet.packet_id, reason_code if self.version == 5 else 0))

    def _ask_hooks(self, effect: effects.AskHooks) -> None:
        if not hooked.auth_packet(self, effect.packet):
            raise ProtocolError(ReasonCode.PROTOCOL_ERROR, "AUTH without an authentication method")

    def _client_disconnected(self, decision: channel.Disconnected) -> None:
        self.session.client_disconnected(decision)
        self._clean_disconnect = not decision.keep_will
        self._close_reason = decision.close_reason
        self.close()


# effect type -> how a connection carries it out, shared by every connection
_EXECUTE = {
    effects.Send: Connection._send, effects.SendBytes: Connection._send_bytes,
    effects.Close: Connection._close, effects.Refuse: Connection._refuse,
    effects.Accept: Connection._accepted, effects.AskHooks: Connection._ask_hooks,
    channel.Disconnected: Connection._client_disconnected,
}
_SESSION_HANDLERS = {
    Puback: Session.handle_puback, Pubrec: Session.handle_pubrec, Pubrel: Session.handle_pubrel,
    Pubcomp: Session.handle_pubcomp, Subscribe: Session.handle_subscribe,
    Unsubscribe: Session.handle_unsubscribe,
}
