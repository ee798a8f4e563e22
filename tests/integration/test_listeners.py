"""Named listeners with real clients on every transport: paho over TLS, mutual
TLS, WebSocket and secure WebSocket, mosquitto_pub/sub over TLS and the Unix
socket, PROXY protocol v1/v2 headers written by the test; per-listener
mountpoint, protocol versions and connection limit; bad input on each
transport closes that connection only, with one log line."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from tests.integration.brokers import actormq_only, run_cli, start_broker
from tests.integration.certs import CertificateAuthority
from tests.integration.clients import connect, unique
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(90)
HOST = "127.0.0.1"
BANNER_LINE = re.compile(r"listening on (\S+) \(mqtt/(\w+), (listener\.\S+)\)")
HAS_MOSQUITTO = bool(shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub"))
# CONNECT, MQTT 3.1.1, clean session, keepalive 60, client id "raw-proxy" (written by hand)
CONNECT_RAW_PROXY = bytes([0x10, 21, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 9]) + b"raw-proxy"
CONNACK_ACCEPTED = bytes([0x20, 2, 0, 0])


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(directory)
    rogue = CertificateAuthority(directory, "rogue CA")
    return {"dir": directory, "ca": ca, "server": ca.issue("server", "localhost", server=True),
            "alice": ca.issue("alice", "alice"), "mallory": rogue.issue("mallory", "mallory")}


def tls_settings(name: str, pki, kind: str = "ssl", **options) -> dict:
    base = {f"listener.{kind}.{name}": f"{HOST}:0", f"listener.{kind}.{name}.certfile": pki["server"].cert,
            f"listener.{kind}.{name}.keyfile": pki["server"].key}
    base.update({f"listener.{kind}.{name}.{key}": value for key, value in options.items()})
    return base


@pytest.fixture(scope="module")
def node(tmp_path_factory, pki):
    actormq_only("named listeners")
    workdir = tmp_path_factory.mktemp("listeners")
    socket_path = str(workdir / "mqtt.sock")
    settings = {
        **tls_settings("tls", pki, cafile=pki["ca"].pem),
        **tls_settings("mtls", pki, cafile=pki["ca"].pem, require_certificate="on",
                       use_identity_as_username="on", mountpoint="users/%u/"),
        **tls_settings("secure", pki, kind="wss"),
        "listener.ws.web": f"{HOST}:0", "listener.ws.web.max_frame_size": "4KB",
        "listener.ws.behind": f"{HOST}:0", "listener.ws.behind.proxy_address_header": "X-Forwarded-For",
        "listener.unix.local": socket_path,
        "listener.tcp.proxied": f"{HOST}:0", "listener.tcp.proxied.proxy_protocol": "on",
        "listener.tcp.mounted": f"{HOST}:0", "listener.tcp.mounted.mountpoint": "tenant1/",
        "listener.tcp.v5only": f"{HOST}:0", "listener.tcp.v5only.allowed_protocol_versions": "5",
        "listener.tcp.limited": f"{HOST}:0", "listener.tcp.limited.max_connections": "1",
        "log.connections": "on",
    }
    broker = start_broker(workdir, settings=settings)
    deadline = time.monotonic() + 5
    while "listener.tcp.limited" not in broker.stdout() and time.monotonic() < deadline:
        time.sleep(0.05)
    broker.listeners = {key: address for address, _kind, key in BANNER_LINE.findall(broker.stdout())}
    broker.socket_path = socket_path
    yield broker
    broker.stop()


def port_of(node, key: str) -> int:
    return int(node.listeners[key].rsplit(":", 1)[1])


def wait_for_log(node, pattern: str, timeout: float = 5.0) -> list[str]:
    """The broker's log lines matching pattern, once there is at least one."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in node.log().splitlines() if regex.search(line)]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no log line matches {pattern!r}\n{node.log()[-3000:]}")


def round_trip(node, publisher_kwargs: dict, port: int | None = None) -> None:
    """A message from a client on the given transport reaches a TCP subscriber and back."""
    topic = unique("lt/")
    with connect(port_of(node, "listener.tcp.default")) as tcp_client, \
            connect(port or 0, **publisher_kwargs) as other:
        tcp_client.subscribe(topic)
        other.subscribe(topic + "/back")
        other.publish(topic, b"out", qos=1)
        assert tcp_client.expect_one().payload == b"out"
        tcp_client.publish(topic + "/back", b"back", qos=1)
        assert other.expect_one().payload == b"back"


def test_banner_lists_every_listener(node):
    kinds = {key: kind for _address, kind, key in BANNER_LINE.findall(node.stdout())}
    assert kinds == {"listener.tcp.default": "tcp", "listener.ssl.tls": "ssl", "listener.ssl.mtls": "ssl",
                     "listener.wss.secure": "wss", "listener.ws.web": "ws", "listener.ws.behind": "ws",
                     "listener.unix.local": "unix", "listener.tcp.proxied": "tcp",
                     "listener.tcp.mounted": "tcp", "listener.tcp.v5only": "tcp",
                     "listener.tcp.limited": "tcp"}
    assert node.listeners["listener.unix.local"] == node.socket_path
    assert node.stdout().index("listener.tcp.default") < node.stdout().index("listener.ssl.tls")


def test_paho_over_tls(node, pki):
    round_trip(node, {"tls": {"ca_certs": str(pki["ca"].pem)}, "host": "localhost"},
               port_of(node, "listener.ssl.tls"))


def test_mutual_tls_takes_the_certificate_cn_as_username(node, pki):
    alice = {"ca_certs": str(pki["ca"].pem), "certfile": str(pki["alice"].cert),
             "keyfile": str(pki["alice"].key)}
    topic = unique("m")
    with connect(port_of(node, "listener.tcp.default")) as watcher, \
            connect(port_of(node, "listener.ssl.mtls"), tls=alice, host="localhost") as client:
        watcher.subscribe(f"users/alice/{topic}")
        client.subscribe(topic)
        client.publish(topic, b"from alice", qos=1)
        assert client.expect_one().topic == topic      # delivered without the mountpoint
        assert watcher.expect_one().topic == f"users/alice/{topic}"


def test_mutual_tls_refuses_a_client_without_a_trusted_certificate(node, pki):
    before = len(re.findall("listener.ssl.mtls: TLS handshake", node.log()))
    context = ssl.create_default_context(cafile=str(pki["ca"].pem))
    context.load_cert_chain(str(pki["mallory"].cert), str(pki["mallory"].key))
    with socket.create_connection((HOST, port_of(node, "listener.ssl.mtls")), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(CONNECT_RAW_PROXY)
                if not tls.recv(4):
                    raise ConnectionError("closed")
    lines = wait_for_log(node, "listener.ssl.mtls: TLS handshake with 127.0.0.1:\\d+ failed")
    assert len(lines) == before + 1
    round_trip(node, {"tls": {"ca_certs": str(pki["ca"].pem)}, "host": "localhost"},
               port_of(node, "listener.ssl.tls"))


def test_paho_over_websocket(node):
    round_trip(node, {"transport": "websockets"}, port_of(node, "listener.ws.web"))


def test_paho_over_websocket_mqtt_3_1_1(node):
    round_trip(node, {"transport": "websockets", "version": 4}, port_of(node, "listener.ws.web"))


def test_paho_over_secure_websocket(node, pki):
    round_trip(node, {"transport": "websockets", "tls": {"ca_certs": str(pki["ca"].pem)},
                      "host": "localhost"}, port_of(node, "listener.wss.secure"))


def test_paho_over_the_unix_socket(node):
    round_trip(node, {"transport": "unix", "host": node.socket_path}, 1883)   # the port is ignored
    assert wait_for_log(node, r"connected from local:")


@pytest.mark.skipif(not HAS_MOSQUITTO, reason="mosquitto-clients not installed")
@pytest.mark.parametrize("transport", ["tls", "unix"])
def test_mosquitto_clients(node, pki, transport):
    if transport == "tls":
        where = ["-h", "localhost", "-p", str(port_of(node, "listener.ssl.tls")), "--cafile", str(pki["ca"].pem)]
    else:
        where = ["--unix", node.socket_path]
    topic = unique("mq/")
    sub = subprocess.Popen(["mosquitto_sub", *where, "-t", topic, "-C", "1", "-W", "10", "-q", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while sub.poll() is None and time.monotonic() < deadline:
            subprocess.run(["mosquitto_pub", *where, "-t", topic, "-m", f"via {transport}", "-q", "1"],
                           check=True, timeout=10, capture_output=True)
            time.sleep(0.2)
        out, err = sub.communicate(timeout=5)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert out.strip() == f"via {transport}", err


def proxy_v1(source: str, port: int) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 {port} 1883\r\n".encode()


def proxy_v2_ipv4(source: str, port: int) -> bytes:
    # signature, version 2 + PROXY, AF_INET + STREAM, 12 address bytes (written by hand)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11, 0, 12]) + socket.inet_aton(source)
            + socket.inet_aton("127.0.0.1") + port.to_bytes(2, "big") + (1883).to_bytes(2, "big"))


@pytest.mark.parametrize("header", [proxy_v1, proxy_v2_ipv4], ids=["v1", "v2"])
def test_proxy_protocol_gives_the_real_client_address(node, header):
    source = "203.0.113.7" if header is proxy_v1 else "198.51.100.23"
    with socket.create_connection((HOST, port_of(node, "listener.tcp.proxied")), timeout=5) as raw:
        raw.sendall(header(source, 4242) + CONNECT_RAW_PROXY)   # one segment: header and CONNECT
        assert raw.recv(4) == CONNACK_ACCEPTED
        assert wait_for_log(node, rf"client raw-proxy connected from {re.escape(source)}:4242:")


def test_proxy_listener_closes_a_connection_without_a_header(node):
    with socket.create_connection((HOST, port_of(node, "listener.tcp.proxied")), timeout=5) as raw:
        raw.sendall(CONNECT_RAW_PROXY)
        assert closed_by_broker(raw)
    assert len(wait_for_log(node, "listener.tcp.proxied: connection from 127.0.0.1:\\d+ closed: "
                                  "no PROXY protocol signature")) == 1


def test_proxy_header_on_a_listener_without_it(node):
    with socket.create_connection((HOST, port_of(node, "listener.tcp.default")), timeout=5) as raw:
        raw.sendall(proxy_v1("203.0.113.9", 5555) + CONNECT_RAW_PROXY)
        assert closed_by_broker(raw)
    wait_for_log(node, r"client - \(127.0.0.1:\d+\): protocol error")
    round_trip(node, {}, port_of(node, "listener.tcp.default"))


def test_plain_tcp_on_the_tls_port(node, pki):
    client = RawClient(port_of(node, "listener.ssl.tls"))
    client.send_bytes(CONNECT_RAW_PROXY)
    wait_for_log(node, "listener.ssl.tls: TLS handshake with 127.0.0.1:\\d+ failed")
    round_trip(node, {"tls": {"ca_certs": str(pki["ca"].pem)}, "host": "localhost"},
               port_of(node, "listener.ssl.tls"))


def ws_upgrade(port: int, path: str = "/mqtt", extra: str = "") -> tuple[socket.socket, bytes]:
    sock = socket.create_connection((HOST, port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Protocol: mqtt\r\n{extra}\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            break
        response += chunk
    return sock, response


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame, FIN set (RFC 6455 5.2), written by hand."""
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if len(payload) < 126:
        length = bytes([0x80 | len(payload)])
    else:
        length = bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return bytes([0x80 | opcode]) + length + mask + masked


def server_frames(sock: socket.socket) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of the unmasked short frames one recv brought."""
    data, frames = sock.recv(4096), []
    while data:
        length = data[1] & 0x7F
        assert length < 126 and not data[1] & 0x80, data
        frames.append((data[0] & 0x0F, data[2:2 + length]))
        data = data[2 + length:]
    return frames


def read_close_code(sock: socket.socket) -> int:
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data[0] == 0x88, data       # a close frame first
    return int.from_bytes(data[2:4], "big")


def test_websocket_upgrade_answer_and_mqtt_split_across_frames(node):
    sock, response = ws_upgrade(port_of(node, "listener.ws.web"))
    assert response.startswith(b"HTTP/1.1 101")
    assert b"sec-websocket-protocol: mqtt" in response.lower()
    # the CONNECT split over three binary frames, the first two without FIN
    parts = CONNECT_RAW_PROXY[:5], CONNECT_RAW_PROXY[5:12], CONNECT_RAW_PROXY[12:]
    sock.sendall(bytes([0x02, 0x80 | len(parts[0])]) + b"\0\0\0\0" + parts[0])
    sock.sendall(bytes([0x00, 0x80 | len(parts[1])]) + b"\0\0\0\0" + parts[1])
    # ... and the last frame carries the rest of it plus a PINGREQ
    sock.sendall(client_frame(0x0, parts[2] + b"\xc0\x00"))
    sock.sendall(client_frame(0x9, b"hi"))      # a WebSocket ping
    mqtt, pongs = b"", []
    while len(mqtt) < 6 or not pongs:
        for opcode, payload in server_frames(sock):
            if opcode == 0x2:
                mqtt += payload
            elif opcode == 0xA:
                pongs.append(payload)
    assert mqtt == CONNACK_ACCEPTED + b"\xd0\x00"     # CONNACK, then PINGRESP, in binary frames
    assert pongs == [b"hi"]
    sock.sendall(client_frame(0x8, (1000).to_bytes(2, "big")))
    assert read_close_code(sock) == 1000
    sock.close()


def test_websocket_garbage_upgrade(node):
    with socket.create_connection((HOST, port_of(node, "listener.ws.web")), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01 this is no HTTP request\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    wait_for_log(node, "listener.ws.web: WebSocket upgrade from 127.0.0.1:\\d+ refused")
    round_trip(node, {"transport": "websockets"}, port_of(node, "listener.ws.web"))


def test_websocket_wrong_path(node):
    sock, response = ws_upgrade(port_of(node, "listener.ws.web"), path="/other")
    assert response.startswith(b"HTTP/1.1 404")
    sock.close()


def test_websocket_text_frame_closes(node):
    sock, response = ws_upgrade(port_of(node, "listener.ws.web"))
    sock.sendall(client_frame(0x1, b"hello"))
    assert read_close_code(sock) == 1003
    sock.close()
    assert len(wait_for_log(node, "listener.ws.web: WebSocket from 127.0.0.1:\\d+ closed: text frame")) == 1


def test_websocket_oversized_frame_closes(node):
    sock, response = ws_upgrade(port_of(node, "listener.ws.web"))
    sock.sendall(client_frame(0x2, CONNECT_RAW_PROXY + b"\x30" + b"\x00" * 5000))
    assert read_close_code(sock) == 1009
    sock.close()
    wait_for_log(node, "listener.ws.web: WebSocket from 127.0.0.1:\\d+ closed: frame larger than max_frame_size")
    round_trip(node, {"transport": "websockets"}, port_of(node, "listener.ws.web"))


def test_websocket_x_forwarded_for(node):
    sock, response = ws_upgrade(port_of(node, "listener.ws.behind"), extra="X-Forwarded-For: 192.0.2.44, 10.0.0.1\r\n")
    assert response.startswith(b"HTTP/1.1 101")
    connect = CONNECT_RAW_PROXY.replace(b"raw-proxy", b"raw-xffwd")
    sock.sendall(client_frame(0x2, connect))
    assert b"\x82\x04" + CONNACK_ACCEPTED in sock.recv(4096)
    wait_for_log(node, r"client raw-xffwd connected from 192.0.2.44:\d+:")
    sock.close()


def test_mountpoint_prefixes_and_strips_topics(node):
    topic = unique("mp/")
    with connect(port_of(node, "listener.tcp.default")) as outside, \
            connect(port_of(node, "listener.tcp.mounted")) as inside:
        outside.subscribe(f"tenant1/{topic}")
        inside.subscribe(topic)
        inside.publish(topic, b"in", qos=1)
        assert outside.expect_one().topic == f"tenant1/{topic}"
        assert inside.expect_one().topic == topic
        outside.publish(topic, b"not mounted", qos=1)     # outside the tenant's tree
        outside.publish(f"tenant1/{topic}", b"mounted", qos=1)
        assert [m.payload for m in inside.expect(1)] == [b"mounted"]
        inside.expect_none(0.3)


def test_an_offline_session_keeps_its_listeners_mountpoint(node):
    client_id = unique("mounted-")
    with connect(port_of(node, "listener.tcp.mounted"), client_id, clean_start=False,
                 properties={"session_expiry_interval": 60}):
        pass
    deadline = time.monotonic() + 5
    while True:
        shown = run_cli("session", "show", f"--client_id={client_id}", "--format", "json",
                        "--data-dir", str(node.data_dir))
        assert shown.returncode == 0, shown.stderr
        rows = json.loads(shown.stdout)
        if rows and not rows[0]["is_online"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(row["client_id"], row["is_online"], row["mountpoint"]) for row in rows] == [
        (client_id, False, "tenant1/")]


def test_allowed_protocol_versions(node):
    with socket.create_connection((HOST, port_of(node, "listener.tcp.v5only")), timeout=5) as raw:
        raw.sendall(CONNECT_RAW_PROXY)                  # MQTT 3.1.1
        assert raw.recv(4) == b"\x20\x02\x00\x01"      # unacceptable protocol version
    with connect(port_of(node, "listener.tcp.v5only"), version=5) as accepted:
        assert accepted.connack.reason_code == 0


def closed_by_broker(sock: socket.socket) -> bool:
    """The broker closed this connection (an orderly close or a reset)."""
    try:
        return sock.recv(4) == b""
    except ConnectionResetError:
        return True


def test_max_connections(node):
    port = port_of(node, "listener.tcp.limited")
    with connect(port):
        with socket.create_connection((HOST, port), timeout=5) as second:
            second.sendall(CONNECT_RAW_PROXY)
            assert closed_by_broker(second)
        wait_for_log(node, r"listener.tcp.limited: connection from 127.0.0.1:\d+ refused: max_connections \(1\)")
    deadline = time.monotonic() + 5
    while True:         # the slot is free once the broker saw the first one go
        try:
            with connect(port):
                break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_certificates_reloaded_on_sighup(node, pki, tmp_path):
    port = port_of(node, "listener.wss.secure")
    old_cert = pki["server"].cert.read_bytes()
    old_key = pki["server"].key.read_bytes()
    fresh = pki["ca"].issue("server-fresh", "localhost", server=True)
    try:
        pki["server"].cert.write_bytes(fresh.cert.read_bytes())
        pki["server"].key.write_bytes(fresh.key.read_bytes())
        node.proc.send_signal(signal.SIGHUP)
        wait_for_log(node, "listener.wss.secure: certificates reloaded")
        served = ssl.get_server_certificate((HOST, port)).encode()
        assert served.strip() == fresh.cert.read_bytes().strip()
    finally:
        pki["server"].cert.write_bytes(old_cert)
        pki["server"].key.write_bytes(old_key)


@pytest.mark.parametrize("problem", ["missing certfile", "garbage keyfile", "key of another cert"])
def test_a_certificate_that_cannot_be_loaded_stops_the_start(tmp_path, pki, problem):
    certfile, keyfile = pki["server"].cert, pki["server"].key
    if problem == "missing certfile":
        certfile = named = tmp_path / "nowhere.crt"
    elif problem == "garbage keyfile":
        keyfile = named = tmp_path / "garbage.key"
        keyfile.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    else:
        keyfile = named = pki["alice"].key
    result = run_cli("run", "--port", "0", "--data-dir", str(tmp_path / "data"),
                     "--set", f"listener.ssl.bad={HOST}:0", "--set", f"listener.ssl.bad.certfile={certfile}",
                     "--set", f"listener.ssl.bad.keyfile={keyfile}", timeout=30)
    assert result.returncode == 2, result.stderr
    assert str(named) in result.stderr and "listener.ssl.bad" in result.stderr
    assert "Traceback" not in result.stderr


def test_hooks_see_the_proxied_address_the_listener_and_the_certificate(tmp_path, pki):
    from tests.integration.hookplugins import events, plugin_settings
    record = tmp_path / "peers.jsonl"
    settings = {**plugin_settings("peerinfo", **{"plugin.peerinfo.file": str(record)}),
                **tls_settings("mtls", pki, cafile=pki["ca"].pem, require_certificate="on",
                               use_identity_as_username="on"),
                "listener.tcp.lb": f"{HOST}:0", "listener.tcp.lb.proxy_protocol": "on"}
    broker = start_broker(tmp_path / "broker", settings=settings)
    try:
        ports = {key: int(address.rsplit(":", 1)[1]) for address, _kind, key in BANNER_LINE.findall(broker.stdout())
                 if not address.startswith("/")}
        with socket.create_connection((HOST, ports["listener.tcp.lb"]), timeout=5) as raw:
            raw.sendall(proxy_v2_ipv4("198.51.100.77", 40000) + CONNECT_RAW_PROXY)
            assert raw.recv(4) == CONNACK_ACCEPTED
        alice = {"ca_certs": str(pki["ca"].pem), "certfile": str(pki["alice"].cert),
                 "keyfile": str(pki["alice"].key)}
        with connect(ports["listener.ssl.mtls"], "alice-device", tls=alice, host="localhost"):
            found = events(record, lambda lines: len(lines) >= 2)
    finally:
        broker.stop()
    by_id = {line["client_id"]: line for line in found}
    assert by_id["raw-proxy"] == {
        "client_id": "raw-proxy", "peer_host": "198.51.100.77", "peer_port": 40000, "listener": "lb",
        "username": None, "mountpoint": "", "cert_cn": None, "cert_dn": None}
    device = by_id["alice-device"]
    assert (device["listener"], device["username"], device["cert_cn"]) == ("mtls", "alice", "alice")
    assert device["cert_dn"] == "CN=alice,O=actormq tests,C=DE"
    assert device["peer_host"] == "127.0.0.1"
