"""MQTT listeners: what each named listener is (`Listener`, read from the
`listener.*` keys by `plan_listeners`), the sockets behind them and the
asyncio servers that serve them in a worker.

TCP-family listeners (tcp, ssl, ws, wss) are bound with SO_REUSEPORT so every
worker process listens on the same port and the kernel spreads new
connections; a Unix socket is bound once by the node and handed to every
worker.

SO_REUSEPORT lets any process of the same user join a listening port, so a
second broker would start silently and take half of the clients. Before its
workers bind a shared port, the node claims it (`claim_port`, for every
shared listener): a socket bound with SO_REUSEADDR but without SO_REUSEPORT,
held, never listening, until the node exits. The workers' listeners can bind
beside it (a non-listening SO_REUSEADDR socket does not conflict), but a
second claim on a port where workers listen fails with EADDRINUSE, whatever
the address family of the listener (0.0.0.0 and 127.0.0.1 conflict). Two
nodes started at the same moment both claim before either listens; a named
lock in the abstract unix socket namespace (Linux; released with the process,
also on kill -9) settles that race. Each accepted connection goes through the layers its listener needs
-- PROXY header (`transport.proxy_protocol`), TLS (`transport.tls`),
WebSocket (`transport.websocket`) -- and ends in the same Connection.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import sys
from dataclasses import dataclass, field, replace

from actormq.conf.areas.listeners import LISTENER_TYPES, TLS_TYPES, WS_TYPES
from actormq.errors import ConfigError, TransportError

log = logging.getLogger("actormq.listeners")

DEFAULT_PROTOCOL_VERSIONS = frozenset({3, 4, 5})


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """What a TLS context is built from (`transport.tls.server_context`)."""

    certfile: str
    keyfile: str
    keyfile_password: str = ""
    cafile: str = ""
    require_certificate: bool = False
    tls_versions: tuple[str, ...] = ("tlsv1.2", "tlsv1.3")
    ciphers: str = ""


@dataclass(frozen=True, slots=True)
class Listener:
    """One named listener and its options; `key` is its config key."""

    type: str                       # tcp, ssl, ws, wss or unix
    name: str
    host: str = ""
    port: int = 0
    path: str = ""                  # the socket file of a unix listener
    max_connections: int = 0        # over all workers; 0 = unlimited
    mountpoint: str = ""
    allowed_protocol_versions: frozenset = DEFAULT_PROTOCOL_VERSIONS
    proxy_protocol: bool = False
    use_identity_as_username: bool = False
    tls: TlsOptions | None = None
    ws_path: str = "/mqtt"
    max_frame_size: int = 0         # 0 = unlimited
    proxy_address_header: str = ""  # e.g. X-Forwarded-For; empty = the socket's peer
    file_mode: int = 0o660
    options: dict = field(default_factory=dict, compare=False)   # the option keys as set

    @property
    def key(self) -> str:
        return f"listener.{self.type}.{self.name}"

    @property
    def address(self) -> str:
        if self.type == "unix":
            return self.path
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def scheme(self) -> str:
        """How the banner names it: mqtt/tcp, mqtt/ssl, mqtt/ws, mqtt/wss, mqtt/unix."""
        return f"mqtt/{self.type}"


DEFAULT_LISTENER = Listener("tcp", "default", "0.0.0.0", 1883)
_SOURCE_RANK = {"default": 0, "file": 1, "env": 2, "flag": 3}


def plan_listeners(config) -> tuple[Listener, ...]:
    """Every listener the config names; a TCP listener first.

    The default TCP listener exists unless the config names TCP listeners of
    its own and leaves the default alone (EMQX's `listener.tcp.external =
    1883`): `listener.tcp.default` sets its address, and
    `listener.tcp.host`/`listener.tcp.port` (`--host/--port`) override the
    part they set when they come from a higher source.
    """
    named = []
    for kind in LISTENER_TYPES:
        section = config.section(f"listener.{kind}.")
        for name in sorted(n for n in section if "." not in n):
            if kind == "tcp" and name in ("default", "host", "port", "backlog", "worker_ports"):
                continue
            named.append(_listener(config, kind, name, section[name]))
    default_set = "listener.tcp.default" in config or any(
        config.source(key) != "default" for key in ("listener.tcp.host", "listener.tcp.port"))
    own_tcp = any(listener.type == "tcp" for listener in named)
    listeners = named if own_tcp and not default_set else [_default_tcp(config)] + named
    _check_unique(listeners)
    return tuple(listeners)


def _default_tcp(config) -> Listener:
    host, port = config["listener.tcp.host"], config["listener.tcp.port"]
    if "listener.tcp.default" in config:
        own_host, own_port = parse_address(config["listener.tcp.default"], "listener.tcp.default")
        rank = _SOURCE_RANK[config.source("listener.tcp.default")]
        host = host if _SOURCE_RANK[config.source("listener.tcp.host")] > rank else own_host
        port = port if _SOURCE_RANK[config.source("listener.tcp.port")] > rank else own_port
    return _listener(config, "tcp", "default", f"{host}:{port}" if ":" not in host else f"[{host}]:{port}")


def _listener(config, kind: str, name: str, address: str) -> Listener:
    key = f"listener.{kind}.{name}"
    opts = config.section(key + ".")
    base = {"type": kind, "name": name, "options": dict(opts),
            "max_connections": opts.get("max_connections") or config["listener.max_connections"],
            "mountpoint": opts.get("mountpoint", ""),
            "allowed_protocol_versions": _protocol_versions(opts.get("allowed_protocol_versions"), key),
            "proxy_protocol": opts.get("proxy_protocol", False)}
    if kind == "unix":
        base.update(path=address, file_mode=_file_mode(opts.get("file_mode", "0660"), key))
    else:
        base["host"], base["port"] = parse_address(address, key)
    if kind in TLS_TYPES:
        base["tls"] = _tls_options(opts, key)
        base["use_identity_as_username"] = opts.get("use_identity_as_username", False) or \
            "peer_cert_as_username" in opts
    if kind in WS_TYPES:
        base["ws_path"] = opts.get("path") or opts.get("mqtt_path") or "/mqtt"
        base["max_frame_size"] = opts.get("max_frame_size", 0)
        header = opts.get("proxy_address_header", "")
        base["proxy_address_header"] = header or ("X-Forwarded-For" if opts.get("proxy_xff_support") else "")
    return Listener(**base)


def parse_address(text: str, key: str) -> tuple[str, int]:
    """host and port of `address:port`, `[v6]:port` or a bare port (all interfaces)."""
    text = text.strip()
    host, colon, port_text = text.rpartition(":")
    host = host.strip("[]") if colon else "0.0.0.0"
    if not port_text.isdigit() or int(port_text) > 65535 or not host or " " in host:
        raise ConfigError(f"expected address:port (e.g. 0.0.0.0:1883), got {text!r}", key=key)
    return host, int(port_text)


def peer_text(peer) -> str:
    """host:port of a socket address; "local" for a Unix socket peer."""
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "local"


def _protocol_versions(text: str | None, key: str) -> frozenset:
    if text is None:
        return DEFAULT_PROTOCOL_VERSIONS
    try:
        versions = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        versions = frozenset({0})
    if not versions or not versions <= DEFAULT_PROTOCOL_VERSIONS:
        raise ConfigError(f"expected protocol levels among 3,4,5, got {text!r}",
                          key=key + ".allowed_protocol_versions")
    return versions


def _file_mode(text: str, key: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise ConfigError(f"expected an octal file mode such as 0660, got {text!r}",
                          key=key + ".file_mode") from None


def _tls_options(opts: dict, key: str) -> TlsOptions:
    certfile, keyfile = opts.get("certfile", ""), opts.get("keyfile", "")
    if not certfile or not keyfile:
        raise ConfigError("a TLS listener needs certfile and keyfile", key=key)
    versions = opts.get("tls_version") or opts.get("tls_versions") or "tlsv1.2,tlsv1.3"
    return TlsOptions(certfile, keyfile, opts.get("keyfile_password", ""),
                      opts.get("cafile") or opts.get("cacertfile", ""),
                      opts.get("require_certificate", False) or opts.get("fail_if_no_peer_cert", False),
                      tuple(v.strip().lower() for v in versions.split(",") if v.strip()),
                      opts.get("ciphers", ""))


def _check_unique(listeners: list[Listener]) -> None:
    seen: dict[str, str] = {}
    for listener in listeners:
        where = listener.path if listener.type == "unix" else f"{listener.host}:{listener.port}"
        if listener.port == 0 and listener.type != "unix":
            continue
        if where in seen:
            raise ConfigError(f"{where} is also {seen[where]}", key=listener.key)
        seen[where] = listener.key


# -- sockets -------------------------------------------------------------------------------


def bind_reuseport(host: str, port: int, backlog: int = 1024, listen: bool = True) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEADDR and SO_REUSEPORT."""
    def setup(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(backlog)
    return _bound(socket.AF_INET6 if ":" in host else socket.AF_INET, f"{host}:{port}", setup)


def _bound(family, where: str, setup) -> socket.socket:
    """A non-blocking stream socket after `setup(sock)`; OSError -> TransportError."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        setup(sock)
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


class PortClaim:
    """This node's hold on a shared listening port (see the module docstring)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self._sockets: list[socket.socket] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        claim = self._open(family)
        claim.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._bind(claim, (host, port), port)
        self.port = claim.getsockname()[1]
        if sys.platform.startswith("linux"):
            self._bind(self._open(socket.AF_UNIX), f"\0actormq-listener:{host}:{self.port}",
                       self.port)

    def _open(self, family: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        self._sockets.append(sock)
        return sock

    def _bind(self, sock: socket.socket, address, port: int) -> None:
        try:
            sock.bind(address)
        except OSError as exc:
            self.close()
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
            raise TransportError(f"cannot listen on {self.host}:{port}: {reason}") from exc

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


def claim_port(host: str, port: int) -> PortClaim:
    """Claim host:port (0: a free port, read back from `.port`) for this node's
    workers; TransportError "cannot listen on H:P: address already in use" when
    another broker, or anything else, listens there. Hold it until the node exits."""
    return PortClaim(host, port)


def claim_ports(listeners: tuple[Listener, ...]) -> tuple[tuple[Listener, ...], list[PortClaim]]:
    """The listeners with every port 0 resolved, and the node's claims on their
    ports (hold them until the node exits)."""
    resolved, claims = [], []
    try:
        for listener in listeners:
            if listener.type != "unix":
                claim = claim_port(listener.host, listener.port)
                claims.append(claim)
                listener = replace(listener, port=claim.port)
            resolved.append(listener)
    except BaseException:
        for claim in claims:
            claim.close()
        raise
    return tuple(resolved), claims


def bind_unix(listener: Listener, backlog: int = 1024) -> socket.socket:
    """The listening socket of a unix listener (a stale socket file is replaced)."""
    path = listener.path
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise TransportError(f"{listener.key}: cannot use {path}: {exc.strerror or exc}") from exc

    def setup(sock: socket.socket) -> None:
        sock.bind(path)
        os.chmod(path, listener.file_mode)
        sock.listen(backlog)
    return _bound(socket.AF_UNIX, f"{path} ({listener.key})", setup)


async def start_listener(loop, host: str, port: int, protocol_factory, backlog: int = 1024):
    """Serve MQTT on host:port; returns the asyncio Server."""
    sock = bind_reuseport(host, port, backlog)
    # create_server listens again with its own backlog (default 100): pass ours
    return await loop.create_server(protocol_factory, sock=sock, backlog=backlog)
