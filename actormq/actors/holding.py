"""The holding of a client's packets while something is decided for it, a base
class of Connection: a hook chain's answer (`wait_then`: the socket is not read
until it comes), the outcomes of its PUBLISHes that wait, applied in arrival
order (`in_order`, `pipeline.Pipeline`), a claim of its client id by the other
workers (`throttle` / `unthrottle`) and backpressure from a full subscriber
(`hold_back` / `go_on`). Held packets are taken again in order, also when
the client closes while held (`take_held_at_close`); a held client's PINGREQ
is answered at once.

Takes: the Connection's packets while it holds them, a chain's answer.
Sends: nothing of its own; it pauses and resumes the socket's reading.
"""

from __future__ import annotations

import asyncio
import logging

from actormq.actors import effects
from actormq.actors.pipeline import Pipeline
from actormq.errors import ProtocolError
from actormq.transport.codec import Pingreq, Publish, ReasonCode

log = logging.getLogger("actormq.connection")

MAX_HELD = 1000   # packets held back before reading stops


class PacketHold:
    """The holding half of a Connection (uses its `_held`, `_pending`, `pipeline`,
    `session`, `transport`, `closed` and its packet handling)."""

    __slots__ = ()

    def throttle(self) -> None:
        """Stop taking packets from this client until unthrottle (waiting)."""
        if self._held is None and not self.closed:
            self._held = []
            self.transport.pause_reading()

    def hold_back(self) -> None:
        """Hold this client's packets until go_on (backpressure, see flow): it is
        still read, and its PINGREQs are answered (see _hold)."""
        if self.pipeline is not None:
            self.pipeline.held_back = True
        if self._held is None and not self.closed:
            self._held = []

    def _hold(self, packets: list) -> None:
        """Keep packets for later, in order; a held client's PINGREQ is answered at
        once, so a hold never puts its keepalive at risk. Past MAX_HELD packets,
        stop reading until unthrottle."""
        held = self._held
        if self.session is None:
            held.extend(packets)
            return
        inflight = self.pipeline
        for packet in packets:
            kind = type(packet)
            if kind is Pingreq:
                self.send_bytes(effects.PINGRESP.data)
            elif (kind is Publish and inflight is not None and not held and self._pending is None
                  and inflight.open() and not self.closed):
                self.execute(self.handle(packet))      # its outcome queues behind the waiting ones
            else:
                held.append(packet)
        if len(held) >= MAX_HELD:
            self.transport.pause_reading()

    def go_on(self) -> None:
        """The end of a hold_back."""
        if self.pipeline is not None:
            self.pipeline.held_back = False
        self.unthrottle()

    def unthrottle(self) -> None:
        """Take packets again, first the ones held back (not while a hook answer is due);
        while PUBLISH outcomes wait in order (`pipeline`), only PUBLISHes that may join them."""
        if self._held is None or self.closed or self.session is None or self._pending is not None:
            return
        inflight = self.pipeline
        if inflight is not None:
            if not inflight.entries:
                self.pipeline = None
                if inflight.held_back:
                    return      # go_on comes
            elif not inflight.open():
                return
        held = self._held
        self._held = None if self.pipeline is None else []
        self.last_seen = self.broker.seen()
        self.transport.resume_reading()
        try:
            (self._handle if self._held is None else self._hold)(held)
        except ProtocolError as exc:
            self.protocol_error(exc)

    def take_held_at_close(self) -> None:
        """The client closed its socket while packets it had sent were held
        back: they were read, and its client counts them as sent, so they are
        taken now, in order, with nothing sent back (its PUBLISHes are routed,
        where the queues' limits decide; a DISCONNECT among them ends the
        session cleanly). Not while a hook's answer or the outcomes of earlier
        PUBLISHes are due: the held packets come after those."""
        session = self.session
        if session is None or self._pending is not None or self.pipeline is not None:
            return
        held, self._held = self._held, None
        self.closed = True      # nothing goes out to a client that is gone, and nothing holds it
        for packet in held:
            try:
                self.execute(self.handle(packet))
            except ProtocolError as exc:
                log.info("client %s (%s): protocol error 0x%02X %s in what it sent before it closed",
                         self.client_id, self.peer, exc.reason_code, exc.detail)
                break
        if session.ack_batch is not None:
            session.release_acks()
        log.debug("client %s (%s) closed while held back: %d packets of it taken",
                  self.client_id, self.peer, len(held))

    def in_order(self, answer, then) -> None:
        """Act on the outcome of a PUBLISH (`then(value)`; a fold's answer may be a Future)
        after those of the client's earlier PUBLISHes still waiting: at once if none is."""
        if self.pipeline is None or not self.pipeline.entries:
            if not isinstance(answer, asyncio.Future):
                then(answer)
                return
            if self.pipeline is None:
                self.pipeline = Pipeline(self)
        if self._held is None:
            self._held = []             # the client's next packets go through _hold
        self.pipeline.add(answer, then)

    def wait_then(self, answer, then) -> None:
        """Act on a hook chain's answer: now when it is there, else once it is — meanwhile
        this client's later packets are held in order and its socket is not read."""
        if not isinstance(answer, asyncio.Future):
            then(answer)
            return
        self._pending = answer
        self.throttle()
        answer.add_done_callback(lambda done: self._answered(done, then))

    def _answered(self, done: asyncio.Future, then) -> None:
        self._pending = None
        if self.closed:
            return
        if self.act_on(lambda answer: then(answer.result()), done) and self._pending is None:
            self.unthrottle()

    def act_on(self, then, value) -> bool:
        """`then(value)`; False when that failed (the client is told and closed)."""
        try:
            then(value)
        except ProtocolError as exc:
            self.protocol_error(exc)
            return False
        except Exception:       # a bug of ours, not the plugin's (chains catch those)
            log.exception("client %s: acting on a hook answer failed", self.client_id)
            self.disconnect(ReasonCode.UNSPECIFIED_ERROR, "internal error")
            return False
        return True
