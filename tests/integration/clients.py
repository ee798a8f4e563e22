"""MQTT clients for the integration tests, so that a test reads like a story.

`connect(...)` returns a `TestClient`: a paho-mqtt 2.x client driven by its own
network thread (no automatic reconnect), with blocking `subscribe`, `publish`
and `unsubscribe`, a queue of `Received` messages and `expect`/`expect_none`.
MQTT 5 properties go in and come out as dicts with the spec's snake_case names
(`user_property`, `message_expiry_interval`, ...), as in actormq's codec.

Raw-socket clients live in `rawclient.py`.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

HOST = "127.0.0.1"
TIMEOUT = 5.0
# paho reports 3.1.1 CONNACK return codes as MQTT 5 reason codes; undo that.
_V3_CONNACK = {0: 0, 0x84: 1, 0x85: 2, 0x88: 3, 0x86: 4, 0x87: 5}
_OPEN: "weakref.WeakSet[TestClient]" = weakref.WeakSet()


def _paho_names() -> dict[str, str]:
    names = Properties(PacketTypes.PUBLISH).names
    return {name.lower().replace(" ", "_"): name.replace(" ", "") for name in names}


PAHO_NAMES = _paho_names()


def to_paho(packet_type: int, props: dict | None) -> Properties | None:
    """snake_case property dict -> paho Properties (None stays None)."""
    if not props:
        return None
    out = Properties(packet_type)
    for key, value in props.items():
        setattr(out, PAHO_NAMES[key], list(value) if key == "user_property" else value)
    return out


def from_paho(props: Properties | None) -> dict:
    """paho Properties -> snake_case dict, user properties as a list of tuples."""
    if props is None:
        return {}
    out = {}
    for key, attr in PAHO_NAMES.items():
        if hasattr(props, attr):
            value = getattr(props, attr)
            out[key] = [tuple(pair) for pair in value] if key == "user_property" else value
    return out


def unique(prefix: str = "t") -> str:
    """A short unique name for client ids and topics on a shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes = b"will"
    qos: int = 0
    retain: bool = False
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    properties: dict


@dataclass(frozen=True, slots=True)
class Connack:
    session_present: bool
    reason_code: int
    properties: dict


class TestClient:
    """A connected paho client; see the module docstring."""

    __test__ = False  # not a pytest test class

    def __init__(self, client: paho.Client, client_id: str, version: int) -> None:
        self.client = client
        self.client_id = client_id
        self.version = version
        self.messages: "queue.Queue[Received]" = queue.Queue()
        self.connack: Connack | None = None
        self.disconnect_reason: int | None = None
        self.disconnect_properties: dict = {}
        self.publish_codes: dict[int, int] = {}  # packet id -> PUBACK/PUBREC reason code
        self.closed = threading.Event()
        self._connacked = threading.Event()
        self._acks: dict[int, tuple[threading.Event, list]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wire(client)
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"paho-{client_id}")

    # -- callbacks ---------------------------------------------------------

    def _wire(self, client: paho.Client) -> None:
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_ack
        client.on_unsubscribe = self._on_ack
        client.on_publish = self._on_publish

    def _on_connect(self, _c, _u, flags, reason: ReasonCode, props) -> None:
        code = reason.value if self.version == 5 else _V3_CONNACK.get(reason.value, reason.value)
        self.connack = Connack(bool(flags.session_present), code, from_paho(props))
        self._connacked.set()

    def _on_disconnect(self, _c, _u, flags, reason: ReasonCode, props) -> None:
        if flags.is_disconnect_packet_from_server:
            self.disconnect_reason = reason.value
            self.disconnect_properties = from_paho(props)
        self.closed.set()
        self._connacked.set()

    def _on_message(self, _c, _u, msg: paho.MQTTMessage) -> None:
        props = from_paho(getattr(msg, "properties", None))
        self.messages.put(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
                                   bool(msg.dup), props))

    def _on_ack(self, _c, _u, mid, reason_codes, _props) -> None:
        self._resolve(mid, [code.value for code in reason_codes])

    def _on_publish(self, _c, _u, mid, reason: ReasonCode, _props) -> None:
        self.publish_codes[mid] = reason.value

    def _pending(self, mid: int) -> tuple[threading.Event, list]:
        with self._lock:
            return self._acks.setdefault(mid, (threading.Event(), []))

    def _resolve(self, mid: int, codes: list[int]) -> None:
        event, box = self._pending(mid)
        box[:] = codes
        event.set()

    def _wait_ack(self, mid: int, what: str, timeout: float) -> list[int]:
        event, box = self._pending(mid)
        if not event.wait(timeout):
            raise AssertionError(f"{self.client_id}: no {what} within {timeout}s")
        with self._lock:
            self._acks.pop(mid, None)
        return list(box)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.client.loop(timeout=0.02) != paho.MQTT_ERR_SUCCESS:
                break
        self.closed.set()
        self._connacked.set()

    # -- actions -----------------------------------------------------------

    def subscribe(self, topic_filter: str, qos: int = 0, *, no_local: bool = False,
                  retain_as_published: bool = False, retain_handling: int = 0,
                  subscription_identifier: int | None = None, timeout: float = TIMEOUT) -> list[int]:
        """Subscribe and return the SUBACK codes (granted QoS or failure)."""
        if self.version == 5:
            options = SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=retain_as_published,
                                       retainHandling=retain_handling)
            props = to_paho(PacketTypes.SUBSCRIBE, {"subscription_identifier": subscription_identifier}
                            if subscription_identifier else None)
            rc, mid = self.client.subscribe(topic_filter, options=options, properties=props)
        else:
            rc, mid = self.client.subscribe(topic_filter, qos)
        assert rc == paho.MQTT_ERR_SUCCESS, f"subscribe not sent: {rc}"
        return self._wait_ack(mid, "SUBACK", timeout)

    def unsubscribe(self, topic_filter: str, timeout: float = TIMEOUT) -> list[int]:
        """Unsubscribe and return the UNSUBACK reason codes (MQTT 5; [] for 3.1.1)."""
        rc, mid = self.client.unsubscribe(topic_filter)
        assert rc == paho.MQTT_ERR_SUCCESS, f"unsubscribe not sent: {rc}"
        return self._wait_ack(mid, "UNSUBACK", timeout)

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0, retain: bool = False,
                properties: dict | None = None, *, wait: bool = True,
                timeout: float = TIMEOUT) -> paho.MQTTMessageInfo:
        """Publish; with wait, block until PUBACK/PUBCOMP (QoS 1/2) or the write (QoS 0)."""
        info = self.client.publish(topic, payload, qos, retain, to_paho(PacketTypes.PUBLISH, properties))
        assert info.rc == paho.MQTT_ERR_SUCCESS, f"publish not sent: {info.rc}"
        if wait:
            self.wait_published(info, timeout)
        return info

    def wait_published(self, info: paho.MQTTMessageInfo, timeout: float = TIMEOUT) -> None:
        info.wait_for_publish(timeout)
        assert info.is_published(), f"{self.client_id}: publish {info.mid} not acknowledged in {timeout}s"

    def expect(self, n: int = 1, timeout: float = TIMEOUT) -> list[Received]:
        """The next n messages, or fail listing what did arrive."""
        got: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            try:
                got.append(self.messages.get(timeout=max(left, 0.001)))
            except queue.Empty:
                raise AssertionError(
                    f"{self.client_id}: expected {n} message(s) within {timeout}s, got {len(got)}: "
                    f"{[(m.topic, m.payload[:40]) for m in got]}") from None
        return got

    def expect_one(self, timeout: float = TIMEOUT) -> Received:
        return self.expect(1, timeout)[0]

    def expect_none(self, timeout: float = 0.5) -> None:
        try:
            extra = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"{self.client_id}: expected no message, got {extra}")

    def drain(self, quiet: float = 0.3, at_most: float = 10.0) -> list[Received]:
        """Everything that arrives until nothing came for `quiet` seconds
        (or `at_most` seconds passed: a stream that never pauses fails)."""
        got = []
        deadline = time.monotonic() + at_most
        while True:
            assert time.monotonic() < deadline, \
                f"{self.client_id}: messages kept coming for {at_most}s ({len(got)})"
            try:
                got.append(self.messages.get(timeout=quiet))
            except queue.Empty:
                return got

    def collect(self, seconds: float) -> list[Received]:
        """Everything that arrives within the next `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return got

    def wait_closed(self, timeout: float = TIMEOUT) -> bool:
        return self.closed.wait(timeout)

    def disconnect(self, reason: int | None = None, properties: dict | None = None) -> None:
        """A normal DISCONNECT (MQTT 5: with the given reason code), then stop."""
        if not self.closed.is_set():
            code = ReasonCode(PacketTypes.DISCONNECT, identifier=reason) if reason is not None else None
            self.client.disconnect(code, to_paho(PacketTypes.DISCONNECT, properties))
            self.closed.wait(TIMEOUT)
        self._halt()

    def drop(self) -> None:
        """Close the socket without DISCONNECT (an abnormal close for the broker)."""
        self._stop.set()
        self._thread.join(TIMEOUT)
        sock = self.client.socket()
        if sock is not None:
            sock.close()
        self.closed.set()

    def _halt(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(TIMEOUT)
        _OPEN.discard(self)

    def close(self) -> None:
        """Teardown: disconnect politely when still connected, never fail."""
        try:
            self.disconnect()
        except Exception:  # noqa: BLE001 - teardown must not mask the test's outcome
            self.drop()

    def __enter__(self) -> "TestClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(port: int, client_id: str = "", version: int = 5, clean_start: bool = True,
            properties: dict | None = None, will: Will | None = None, keepalive: int = 60,
            check: bool = True, username: str | None = None, password: str | None = None,
            manual_ack: bool = False, timeout: float = TIMEOUT, transport: str = "tcp",
            tls: dict | None = None, host: str = HOST) -> TestClient:
    """Connect and wait for the CONNACK; with check, insist that it accepted us.

    transport: "tcp", "websockets" or "unix" (host is then the socket path);
    tls: keyword arguments of paho's tls_set (ca_certs, certfile, keyfile).
    """
    protocol = paho.MQTTv5 if version == 5 else paho.MQTTv311
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                         clean_session=None if version == 5 else clean_start, transport=transport,
                         reconnect_on_failure=False, manual_ack=manual_ack)
    if tls is not None:
        client.tls_set(**tls)
    if username is not None:
        client.username_pw_set(username, password)
    if will is not None:
        client.will_set(will.topic, will.payload, will.qos, will.retain,
                        to_paho(PacketTypes.WILLMESSAGE, will.properties))
    test_client = TestClient(client, client_id, version)
    kwargs = {"clean_start": clean_start, "properties": to_paho(PacketTypes.CONNECT, properties)} \
        if version == 5 else {}
    client.connect(host, port, keepalive, **kwargs)
    test_client._thread.start()
    _OPEN.add(test_client)
    if not test_client._connacked.wait(timeout) or test_client.connack is None:
        test_client.drop()
        raise AssertionError(f"{client_id}: no CONNACK within {timeout}s")
    if check:
        assert test_client.connack.reason_code == 0, f"{client_id}: refused {test_client.connack}"
    return test_client


def close_all() -> None:
    """Close every client a test left open."""
    for client in list(_OPEN):
        client.close()
