"""MQTT over WebSocket (ws and wss listeners), as browsers and paho speak it.

`WebSocketProtocol` owns one wsproto connection (sans-I/O): it answers the
HTTP upgrade on the listener's path with subprotocol `mqtt` or `mqttv3.1`,
and then is the transport of an ordinary Connection -- the MQTT bytes of
binary frames go to `data_received` as they come (a packet split over frames
or several in one frame are the Connection's stream as usual), and what the
Connection writes leaves as one binary frame per write. Ping is answered,
close codes are exchanged; a text frame, a frame over `max_frame_size` or a
bad upgrade closes that connection with one log line.
"""

from __future__ import annotations

import asyncio
import logging

from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Ping, RejectConnection,
                            Request, TextMessage)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from actormq.transport.listeners import peer_text

log = logging.getLogger("actormq.websocket")

SUBPROTOCOLS = ("mqtt", "mqttv3.1")
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class WebSocketProtocol(asyncio.Protocol):
    """asyncio Protocol towards the socket, transport towards the Connection."""

    def __init__(self, listener, make_connection, address=None, slot=None) -> None:
        self.listener = listener
        self.make_connection = make_connection
        self.slot = slot                # the connection's place in the listener's limit
        self.address = address          # from a PROXY header; None = the socket's peer
        self.ws = WSConnection(ConnectionType.SERVER)
        self.transport = None
        self.conn = None
        self.frame_bytes = 0
        self.closing = False

    # -- towards the socket (asyncio.Protocol) -------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.ws.receive_data(data)
            for event in self.ws.events():
                self._on_event(event)
                if self.closing:
                    return
        except RemoteProtocolError as exc:
            self._fail(f"bad WebSocket data: {exc}")
        except LocalProtocolError as exc:       # pragma: no cover - a state we never send in
            self._fail(f"WebSocket state error: {exc}")

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        self.closing = True
        if self.conn is not None:
            self.conn.connection_lost(exc)
        elif self.slot is not None:
            self.slot.release()

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.pause_writing()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.resume_writing()

    def _on_event(self, event) -> None:
        kind = type(event)
        if kind is BytesMessage:
            self._on_bytes(event)
        elif kind is Request:
            self._on_request(event)
        elif kind is Ping:
            self.transport.write(self.ws.send(event.response()))
        elif kind is CloseConnection:
            self.closing = True
            self.transport.write(self.ws.send(event.response()))
            self.transport.close()
        elif kind is TextMessage:
            self._close(1003, "text frame on an MQTT WebSocket")

    def _on_bytes(self, event: BytesMessage) -> None:
        limit = self.listener.max_frame_size
        if limit:
            self.frame_bytes += len(event.data)
            if self.frame_bytes > limit:
                self._close(1009, f"frame larger than max_frame_size ({limit} bytes)")
                return
            if event.frame_finished:
                self.frame_bytes = 0
        if event.data and self.conn is not None:
            self.conn.data_received(bytes(event.data))

    def _on_request(self, request: Request) -> None:
        if request.target.split("?", 1)[0] != self.listener.ws_path:
            self._reject(404, f"upgrade on {request.target!r}, not {self.listener.ws_path!r}")
            return
        offered = request.subprotocols
        chosen = next((p for p in offered if p in SUBPROTOCOLS), None)
        if offered and chosen is None:
            self._reject(400, f"no MQTT subprotocol among {', '.join(offered)}")
            return
        header = self.listener.proxy_address_header
        if header:
            self.address = _forwarded_address(request.extra_headers, header, self.peername())
        self.transport.write(self.ws.send(AcceptConnection(subprotocol=chosen)))
        self.conn = self.make_connection(self.address, self.slot)
        self.conn.connection_made(self)

    def _reject(self, status: int, reason: str) -> None:
        log.info("%s: WebSocket upgrade from %s refused: %s", self.listener.key, peer_text(self.peername()),
                 reason)
        self.closing = True
        self.transport.write(self.ws.send(RejectConnection(status_code=status)))
        self.transport.close()

    def _close(self, code: int, reason: str) -> None:
        log.info("%s: WebSocket from %s closed: %s", self.listener.key, peer_text(self.peername()), reason)
        self.closing = True
        self.transport.write(self.ws.send(CloseConnection(code=code, reason=reason[:120])))
        self.transport.close()

    def _fail(self, reason: str) -> None:
        if self.conn is not None:
            self._close(1002, reason)
            return
        log.info("%s: WebSocket upgrade from %s refused: %s", self.listener.key, peer_text(self.peername()),
                 reason)
        self.closing = True
        self.transport.write(BAD_REQUEST)
        self.transport.close()

    def peername(self):
        return self.address or self.transport.get_extra_info("peername")

    # -- towards the Connection (transport) ------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closing:
            self.transport.write(self.ws.send(BytesMessage(data=data)))

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        try:
            self.transport.write(self.ws.send(CloseConnection(code=CloseReason.NORMAL_CLOSURE)))
        except LocalProtocolError:
            pass
        self.transport.close()

    def is_closing(self) -> bool:
        return self.closing or self.transport.is_closing()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def get_extra_info(self, name: str, default=None):
        if name == "peername" and self.address is not None:
            return self.address
        return self.transport.get_extra_info(name, default)


def _forwarded_address(headers, name: str, peer) -> tuple:
    """The first address of a proxy header (X-Forwarded-For: client, proxy1, ...)."""
    wanted = name.lower().encode()
    values = {key.lower(): value for key, value in headers}
    forwarded = values.get(wanted)
    if not forwarded:
        return peer
    host = forwarded.decode("latin-1").split(",")[0].strip()
    port = values.get(b"x-forwarded-port")
    fallback = peer[1] if isinstance(peer, tuple) else 0
    return host, int(port) if port and port.isdigit() else fallback
