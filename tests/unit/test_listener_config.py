"""Listener specs from config lines as VerneMQ and EMQX 4 write them."""

from pathlib import Path

import pytest

from actormq.conf import load_config
from actormq.errors import ConfigError
from actormq.transport.listeners import plan_listeners


def listeners_of(tmp_path: Path, text: str, overrides=None) -> dict:
    path = tmp_path / "actormq.conf"
    path.write_text(text)
    return {listener.key: listener for listener in plan_listeners(load_config(path, env={}, overrides=overrides))}


def test_vernemq_lines(tmp_path):
    found = listeners_of(tmp_path, """
listener.tcp.default = 127.0.0.1:1883
listener.tcp.internal = 10.0.0.5:1884
listener.tcp.internal.mountpoint = internal/
listener.tcp.internal.allowed_protocol_versions = 3,4
listener.tcp.internal.max_connections = 500
listener.ssl.default = 0.0.0.0:8883
listener.ssl.default.cafile = /etc/ssl/ca.pem
listener.ssl.default.certfile = /etc/ssl/server.crt
listener.ssl.default.keyfile = /etc/ssl/server.key
listener.ssl.default.require_certificate = on
listener.ssl.default.use_identity_as_username = on
listener.ssl.default.tls_version = tlsv1.2
listener.ws.default = 0.0.0.0:8080
listener.ws.default.proxy_xff_support = on
listener.wss.default = 0.0.0.0:8081
listener.wss.default.certfile = /etc/ssl/server.crt
listener.wss.default.keyfile = /etc/ssl/server.key
listener.tcp.lb = 0.0.0.0:1885
listener.tcp.lb.proxy_protocol = on
listener.unix.local = /run/actormq.sock
listener.unix.local.file_mode = 0600
""")
    assert list(found) == ["listener.tcp.default", "listener.tcp.internal", "listener.tcp.lb",
                           "listener.ssl.default", "listener.ws.default", "listener.wss.default",
                           "listener.unix.local"]
    assert (found["listener.tcp.default"].host, found["listener.tcp.default"].port) == ("127.0.0.1", 1883)
    internal = found["listener.tcp.internal"]
    assert (internal.host, internal.port, internal.mountpoint) == ("10.0.0.5", 1884, "internal/")
    assert internal.allowed_protocol_versions == {3, 4} and internal.max_connections == 500
    ssl = found["listener.ssl.default"]
    assert ssl.tls.require_certificate and ssl.use_identity_as_username
    assert ssl.tls.cafile == "/etc/ssl/ca.pem" and ssl.tls.tls_versions == ("tlsv1.2",)
    assert found["listener.ws.default"].proxy_address_header == "X-Forwarded-For"
    assert found["listener.ws.default"].ws_path == "/mqtt"
    assert found["listener.tcp.lb"].proxy_protocol
    assert (found["listener.unix.local"].path, found["listener.unix.local"].file_mode) == ("/run/actormq.sock", 0o600)


def test_emqx_4_spellings(tmp_path):
    found = listeners_of(tmp_path, """
listener.tcp.external = 1883
listener.ssl.external = 8883
listener.ssl.external.certfile = etc/certs/cert.pem
listener.ssl.external.keyfile = etc/certs/key.pem
listener.ssl.external.cacertfile = etc/certs/cacert.pem
listener.ssl.external.fail_if_no_peer_cert = true
listener.ssl.external.peer_cert_as_username = cn
listener.ssl.external.tls_versions = tlsv1.3,tlsv1.2
listener.ws.external = 8083
listener.ws.external.mqtt_path = /mqtt-ws
listener.ws.external.proxy_address_header = X-Real-IP
""")
    assert list(found)[0] == "listener.tcp.external"     # it takes the default listener's place
    assert (found["listener.tcp.external"].host, found["listener.tcp.external"].port) == ("0.0.0.0", 1883)
    ssl = found["listener.ssl.external"]
    assert ssl.tls.cafile == "etc/certs/cacert.pem" and ssl.tls.require_certificate
    assert ssl.use_identity_as_username and ssl.tls.tls_versions == ("tlsv1.3", "tlsv1.2")
    assert found["listener.ws.external"].ws_path == "/mqtt-ws"
    assert found["listener.ws.external"].proxy_address_header == "X-Real-IP"


def test_host_and_port_flags_override_the_default_listener_line(tmp_path):
    text = "listener.tcp.default = 10.1.1.1:1999\n"
    found = listeners_of(tmp_path, text, overrides={"listener.tcp.port": "2000"})
    assert (found["listener.tcp.default"].host, found["listener.tcp.default"].port) == ("10.1.1.1", 2000)
    found = listeners_of(tmp_path, "listener.tcp.port = 1777\nlistener.tcp.host = 127.0.0.2\n")
    assert (found["listener.tcp.default"].host, found["listener.tcp.default"].port) == ("127.0.0.2", 1777)


def test_the_default_tcp_listener_always_exists(tmp_path):
    found = listeners_of(tmp_path, "")
    assert list(found) == ["listener.tcp.default"]
    assert (found["listener.tcp.default"].host, found["listener.tcp.default"].port) == ("0.0.0.0", 1883)


@pytest.mark.parametrize("text, message", [
    ("listener.tcp.x = localhost\n", "expected address:port"),
    ("listener.tcp.x = 1.2.3.4:70000\n", "expected address:port"),
    ("listener.tcp.x = 1.2.3.4:1\nlistener.tcp.x.allowed_protocol_versions = 4,6\n", "among 3,4,5"),
    ("listener.ssl.x = 1.2.3.4:1\n", "needs certfile and keyfile"),
    ("listener.tcp.x = 127.0.0.1:1884\nlistener.tcp.y = 127.0.0.1:1884\n", "also listener.tcp.x"),
    ("listener.unix.x = /tmp/s\nlistener.unix.x.file_mode = rw\n", "octal"),
])
def test_bad_listener_lines(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        listeners_of(tmp_path, text)
