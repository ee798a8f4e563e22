"""Tracing one client: every packet in and out (deliveries are the PUBLISH
packets out), every hook call with its provider, latency and answer, drops
with their reason, and the end of its connection, streamed to the operator
(`actormq trace client client-id=X`, `GET /api/v4/actormq/trace/client`).

The admin stream `trace.client` runs on every worker (the client may connect
to any). While a worker traces, its `TraceHub` shadows a few methods with
instance attributes — the broker's `open_session` and `connection_closed`,
the traced connection's `_handle`, `send_bytes` and `send_acks`, each hook provider's
`fn`, and the `message.dropped` chain (`_DropWatch`) — and removes them when
the last trace stops, so an untraced broker runs exactly the code it runs
without this module. Outgoing bytes are decoded again with a decoder of
their own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import fields, is_dataclass

from actormq.mgmt.commands import CommandError, admin_stream
from actormq.transport.codec.decode import StreamDecoder

log = logging.getLogger("actormq.mgmt")

PREVIEW = 100

_HUBS: dict[int, "TraceHub"] = {}       # id(broker) -> its hub, while anything is traced


def describe(packet) -> dict:
    """A packet as JSON-able fields (payload previewed, password never shown)."""
    fields_of = {"type": type(packet).__name__.upper()}
    if not is_dataclass(packet):
        return fields_of
    for field in fields(packet):
        value = getattr(packet, field.name)
        if field.name == "password":
            value = None if value is None else "******"
        elif field.name == "payload":
            fields_of["payload_size"] = len(value)
            value = _preview(value)
        fields_of[field.name] = _jsonable(value)
    return fields_of


def _preview(data: bytes) -> str:
    text = data[:PREVIEW].decode("utf-8", "backslashreplace")
    return text + ("…" if len(data) > PREVIEW else "")


def _jsonable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if hasattr(value, "value") and isinstance(getattr(value, "value"), int):
        return value.value
    return value


class _DropWatch:
    """Stands in for the `message.dropped` chain while a trace runs: reports the
    traced clients' drops with their reason, then passes every drop on."""

    def __init__(self, hub: "TraceHub", chain) -> None:
        self.hub = hub
        self.chain = chain          # the real chain, or None when no plugin hooks the point

    def notify(self, client_id, message, reason) -> None:
        if client_id in self.hub.watchers:
            self.hub.emit_for(client_id, "dropped", {
                "reason": getattr(reason, "value", str(reason)), "topic": message.topic_name,
                "qos": message.qos, "payload_size": len(message.payload)})
        if self.chain is not None:
            self.chain.notify(client_id, message, reason)


def _client_of(args: tuple) -> str | None:
    """The client id a hook call is about: its ClientInfo's, or a client id argument."""
    for arg in args[:1]:
        client_id = getattr(arg, "client_id", None)
        if isinstance(client_id, str):
            return client_id
        if isinstance(arg, str):
            return arg
    return None


class TraceHub:
    """The traces of one worker and the methods shadowed for them."""

    def __init__(self, broker) -> None:
        self.broker = broker
        self.watchers: dict[str, list] = {}     # client id -> emit callbacks
        self._connections: dict[int, object] = {}
        self._providers: list = []              # (provider, its own fn) while wrapped
        self._install()

    def _install(self) -> None:
        broker = self.broker
        open_session = type(broker).open_session.__get__(broker)
        connection_closed = type(broker).connection_closed.__get__(broker)

        def traced_open_session(conn, connect, client_id, expiry):
            if client_id in self.watchers:
                self._emit(client_id, "packet_in", describe(connect), conn)
                self._watch_connection(client_id, conn)
                self._watch_hooks()
            return open_session(conn, connect, client_id, expiry)

        def traced_connection_closed(conn):
            if id(conn) in self._connections:
                self._emit(conn.client_id, "closed", {"peer": conn.peer}, conn)
                self._unwatch_connection(conn)
            return connection_closed(conn)

        broker.open_session = traced_open_session
        broker.connection_closed = traced_connection_closed
        self._watch_hooks()

    def _watch_hooks(self) -> None:
        """Report the traced clients' hook calls (provider, latency, answer) and drops.
        A plugin change rebuilds the chains without these wrappers; the next traced
        CONNECT wraps them again."""
        hooks = getattr(self.broker, "hooks", None)
        if hooks is None:
            return
        if not isinstance(hooks.message_dropped, _DropWatch):
            hooks.message_dropped = _DropWatch(self, hooks.message_dropped)
        wrapped = {id(provider) for provider, _fn in self._providers}
        for loaded_point in _points():
            chain = hooks.chain(loaded_point)
            if chain is None or isinstance(chain, _DropWatch):
                continue
            for provider in chain.providers:
                if id(provider) not in wrapped:
                    self._providers.append((provider, provider.fn))
                    provider.fn = self._traced_call(provider, provider.fn)

    def _traced_call(self, provider, fn):
        hub = self

        def call(*args):
            client_id = _client_of(args)
            if client_id not in hub.watchers:
                return fn(*args)
            started = time.perf_counter()
            answer = fn(*args)
            if hasattr(answer, "__await__"):
                return hub._awaited(provider, client_id, started, answer)
            hub._hook_called(provider, client_id, started, answer)
            return answer

        return call

    async def _awaited(self, provider, client_id: str, started: float, awaitable):
        try:
            answer = await awaitable
        except BaseException as exc:
            self._hook_called(provider, client_id, started, f"raised {type(exc).__name__}: {exc}")
            raise
        self._hook_called(provider, client_id, started, answer)
        return answer

    def _hook_called(self, provider, client_id: str, started: float, answer) -> None:
        text = answer if isinstance(answer, str) else repr(answer)
        self.emit_for(client_id, "hook", {
            "hook": provider.point.dotted, "provider": provider.name,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "answer": text if len(text) <= PREVIEW * 2 else text[:PREVIEW * 2] + "…"})

    def _unwatch_hooks(self) -> None:
        for provider, fn in self._providers:
            provider.fn = fn
        self._providers.clear()
        hooks = getattr(self.broker, "hooks", None)
        if hooks is not None and isinstance(hooks.message_dropped, _DropWatch):
            hooks.message_dropped = hooks.message_dropped.chain

    def _uninstall(self) -> None:
        for name in ("open_session", "connection_closed"):
            self.broker.__dict__.pop(name, None)
        self._unwatch_hooks()
        for conn in list(self._connections.values()):
            self._unwatch_connection(conn)

    def _watch_connection(self, client_id: str, conn) -> None:
        if id(conn) in self._connections:
            return
        self._connections[id(conn)] = conn
        handle = type(conn)._handle.__get__(conn)
        send_bytes = type(conn).send_bytes.__get__(conn)
        send_acks = type(conn).send_acks.__get__(conn)
        outgoing = StreamDecoder()

        def traced_handle(packets):
            for packet in packets:
                self._emit(client_id, "packet_in", describe(packet), conn)
            return handle(packets)

        def report_out(data):
            outgoing.version = conn.version
            try:
                for packet in outgoing.feed(data):
                    self._emit(client_id, "packet_out", describe(packet), conn)
            except Exception as exc:
                self._emit(client_id, "packet_out", {"type": "?", "size": len(data), "error": str(exc)},
                           conn)

        def traced_send_bytes(data, messages=0):
            report_out(data)
            return send_bytes(data, messages)

        def traced_send_acks(data):
            report_out(data)
            return send_acks(data)

        conn._handle = traced_handle
        conn.send_bytes = traced_send_bytes
        conn.send_acks = traced_send_acks

    def _unwatch_connection(self, conn) -> None:
        self._connections.pop(id(conn), None)
        conn.__dict__.pop("_handle", None)
        conn.__dict__.pop("send_bytes", None)
        conn.__dict__.pop("send_acks", None)

    def emit_for(self, client_id: str, kind: str, detail: dict) -> None:
        session = self.broker.sessions.get(client_id)
        self._emit(client_id, kind, detail, session.conn if session is not None else None)

    def _emit(self, client_id: str, kind: str, detail: dict, conn) -> None:
        """Send one event to the client's traces; a trace's failure never reaches the
        code being traced (a plugin, the connection)."""
        event = {"time": time.time(), "clientid": client_id, "event": kind,
                 "peer": conn.peer if conn is not None else None} | detail
        for emit in self.watchers.get(client_id, ()):
            try:
                emit(event)
            except Exception:
                log.exception("trace of %s: event %s not sent", client_id, kind)

    def add(self, client_id: str, emit) -> None:
        self.watchers.setdefault(client_id, []).append(emit)
        session = self.broker.sessions.get(client_id)
        if session is not None and session.conn is not None:
            self._watch_connection(client_id, session.conn)
            self._emit(client_id, "traced", {"detail": "already connected"}, session.conn)

    def remove(self, client_id: str, emit) -> bool:
        """Stop one trace; True when this hub traces nothing any more (and is removed)."""
        watchers = self.watchers.get(client_id, [])
        if emit in watchers:
            watchers.remove(emit)
        if not watchers:
            self.watchers.pop(client_id, None)
            for conn in list(self._connections.values()):
                if conn.client_id == client_id:
                    self._unwatch_connection(conn)
        if self.watchers:
            return False
        self._uninstall()
        return True


def _points():
    from actormq.hooks.points import HookPoint
    return list(HookPoint)


@admin_stream("trace.client")
def trace_client(broker, args: dict, emit):
    """Stream every event of one client (args: clientid) until stopped."""
    client_id = args.get("clientid")
    if not isinstance(client_id, str) or not client_id:
        raise CommandError("clientid is required")
    hub = _HUBS.get(id(broker))
    if hub is None:
        hub = _HUBS[id(broker)] = TraceHub(broker)
    hub.add(client_id, emit)

    def stop() -> None:
        if hub.remove(client_id, emit):
            _HUBS.pop(id(broker), None)

    return stop
