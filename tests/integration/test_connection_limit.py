"""A listener's `max_connections` counts a connection from its accept: TLS
handshakes, PROXY headers and WebSocket upgrades that have not finished (or
never will) hold their place, so a flood of half-open ones cannot take the
listener past its limit; their places come back when they fail or close."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.test_listeners import (  # noqa: F401  (pki: a fixture)
    BANNER_LINE, CONNACK_ACCEPTED, CONNECT_RAW_PROXY, HOST, closed_by_broker, pki, port_of, tls_settings,
    wait_for_log, ws_upgrade,
)

pytestmark = pytest.mark.timeout(60)

LIMITS = {"listener.ssl.limited": 2, "listener.tcp.proxied": 1, "listener.ws.limited": 1}


@pytest.fixture(scope="module")
def node(tmp_path_factory, pki):
    actormq_only("listener limits")
    settings = {
        **tls_settings("limited", pki, max_connections=str(LIMITS["listener.ssl.limited"])),
        "listener.tcp.proxied": f"{HOST}:0", "listener.tcp.proxied.proxy_protocol": "on",
        "listener.tcp.proxied.max_connections": str(LIMITS["listener.tcp.proxied"]),
        "listener.ws.limited": f"{HOST}:0",
        "listener.ws.limited.max_connections": str(LIMITS["listener.ws.limited"]),
    }
    broker = broker_with_listeners(tmp_path_factory.mktemp("limits"), settings, 4)
    yield broker
    broker.stop()


def broker_with_listeners(workdir, settings: dict, count: int):
    """A broker started with these settings, once its banner named `count`
    listeners (their addresses by key in `listeners`, for port_of)."""
    broker = start_broker(workdir, settings=settings)
    deadline = time.monotonic() + 5
    while len(BANNER_LINE.findall(broker.stdout())) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    broker.listeners = {key: address for address, _kind, key in BANNER_LINE.findall(broker.stdout())}
    return broker


def silent_connections(port: int, count: int) -> list[socket.socket]:
    """Connections that send nothing: a handshake begun and never finished."""
    return [socket.create_connection((HOST, port), timeout=5) for _ in range(count)]


def refused_while_full(node, key: str, port: int) -> None:
    with socket.create_connection((HOST, port), timeout=5) as one_more:
        assert closed_by_broker(one_more), f"{key}: one connection more than its limit was kept"
    wait_for_log(node, rf"{key}: connection from 127.0.0.1:\d+ refused: "
                       rf"max_connections \({LIMITS[key]}\)")


def eventually(attempt, timeout: float = 5.0):
    """attempt()'s result once it stops failing (the broker saw a close)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except (AssertionError, OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def tls_connect(port: int, pki) -> None:
    context = ssl.create_default_context(cafile=str(pki["ca"].pem))
    with socket.create_connection((HOST, port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(CONNECT_RAW_PROXY)
        assert tls.recv(4) == CONNACK_ACCEPTED


def proxied_connect(port: int, _pki) -> None:
    with socket.create_connection((HOST, port), timeout=5) as raw:
        raw.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 1883\r\n" + CONNECT_RAW_PROXY)
        assert raw.recv(4) == CONNACK_ACCEPTED


def websocket_upgrade(port: int, _pki) -> None:
    sock, response = ws_upgrade(port)
    sock.close()
    assert response.startswith(b"HTTP/1.1 101"), response


@pytest.mark.parametrize("key, finished", [("listener.ssl.limited", tls_connect),
                                           ("listener.tcp.proxied", proxied_connect),
                                           ("listener.ws.limited", websocket_upgrade)],
                         ids=["tls-handshake", "proxy-header", "websocket-upgrade"])
def test_unfinished_handshakes_count_against_the_limit(node, pki, key, finished):
    """As many connections as the limit that never finish their handshake: one
    more is refused at accept; once they close, a finished one gets through."""
    port = port_of(node, key)
    unfinished = silent_connections(port, LIMITS[key])
    time.sleep(0.2)     # the broker accepted them
    refused_while_full(node, key, port)
    for sock in unfinished:
        sock.close()
    eventually(lambda: finished(port, pki))
