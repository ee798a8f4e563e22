"""MQTT 5 enhanced authentication through a plugin at client.enhanced_auth:
CONNECT with an authentication method, AUTH 0x18 challenges both ways, the
CONNACK carrying the method and the final data, a failed exchange refused
with the plugin's reason code, and re-authentication (AUTH 0x19) of a
connected client. Raw sockets with packets built by hand."""

from __future__ import annotations

import pytest

from actormq.transport.codec import Auth, Connack, Pingreq, Pingresp
from tests.integration.brokers import start_broker
from tests.integration.clients import unique
from tests.integration.hookplugins import plugin_settings
from tests.integration.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)
METHOD = {"authentication_method": "challenge"}


@pytest.fixture(scope="module")
def challenger(tmp_path_factory):
    broker = start_broker(tmp_path_factory.mktemp("challenger"),
                          settings=plugin_settings("challenger"))
    yield broker
    broker.stop()


def test_a_challenge_exchange_ends_in_a_connack_with_the_method_and_data(challenger):
    raw = RawClient(challenger.port)
    challenge = raw.connect(unique(), properties={**METHOD, "authentication_data": b"ann"}, check=False)
    assert challenge == Auth(0x18, {**METHOD, "authentication_data": b"nonce:ann"})
    raw.send(Auth(0x18, {**METHOD, "authentication_data": b"signed:ann"}))
    connack = raw.expect(Connack)
    assert connack.reason_code == 0
    assert connack.properties["authentication_method"] == "challenge"
    assert connack.properties["authentication_data"] == b"welcome"
    raw.send(Pingreq())
    assert isinstance(raw.recv(), Pingresp)


def test_a_wrong_answer_is_refused_with_the_plugin_reason_code(challenger):
    raw = RawClient(challenger.port)
    raw.connect(unique(), properties={**METHOD, "authentication_data": b"bob"}, check=False)
    raw.send(Auth(0x18, {**METHOD, "authentication_data": b"signed:eve"}))
    packets = raw.expect_closed()
    assert [type(p) for p in packets] == [Connack] and packets[0].reason_code == 0x87


def test_an_unknown_method_is_refused_by_the_default(challenger):
    raw = RawClient(challenger.port)
    connack = raw.connect(unique(), properties={"authentication_method": "other"}, check=False)
    assert connack.reason_code == 0x86      # nobody allowed it: plugins.default.enhanced_auth = deny


def test_reauthentication_of_a_connected_client(challenger):
    raw = RawClient(challenger.port)
    raw.connect(unique(), properties={**METHOD, "authentication_data": b"cy"}, check=False)
    raw.send(Auth(0x18, {**METHOD, "authentication_data": b"signed:cy"}))
    assert raw.expect(Connack).reason_code == 0
    raw.send(Auth(0x19, {**METHOD, "authentication_data": b"cy"}))
    assert raw.expect(Auth) == Auth(0x18, {**METHOD, "authentication_data": b"nonce:cy"})
    raw.send(Auth(0x18, {**METHOD, "authentication_data": b"signed:cy"}))
    assert raw.expect(Auth) == Auth(0x00, {**METHOD, "authentication_data": b"welcome"})
    raw.send(Auth(0x19, {**METHOD, "authentication_data": b"cy"}))
    raw.expect(Auth)
    raw.send(Auth(0x18, {**METHOD, "authentication_data": b"forged"}))
    raw.expect_disconnect(0x87)


def test_auth_with_another_method_is_a_protocol_error(challenger):
    raw = RawClient(challenger.port)
    raw.connect(unique(), properties={**METHOD, "authentication_data": b"dee"}, check=False)
    raw.send(Auth(0x18, {"authentication_method": "other", "authentication_data": b"x"}))
    packets = raw.expect_closed()
    assert all(not isinstance(p, Connack) or p.reason_code == 0x82 for p in packets)
