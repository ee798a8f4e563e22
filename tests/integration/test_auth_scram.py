"""MQTT 5 enhanced authentication with SCRAM-SHA-256 against the password
file's users, on a real broker: scramp's client on one side of raw AUTH
packets, at CONNECT and for re-authentication."""

from __future__ import annotations

import pytest
from scramp import ScramClient

from actormq.auth.hashes import make_pbkdf2_hash
from actormq.auth.passwd_file import user_line
from actormq.auth.scram import ScramCredentials
from actormq.transport.codec import Auth, Connack, Connect
from tests.integration import clients
from tests.integration.brokers import actormq_only, start_broker
from tests.integration.rawclient import RawClient

METHOD = "SCRAM-SHA-256"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory):
    actormq_only("auth settings")
    workdir = tmp_path_factory.mktemp("scram")
    passwd = workdir / "passwd"
    passwd.write_text(user_line("alice", make_pbkdf2_hash("wonder"), scram=ScramCredentials.from_password("wonder"))
                      + "\n")
    broker = start_broker(workdir / "broker", settings={"auth.password_file": str(passwd),
                                                        "mqtt.allow_anonymous": "false"})
    yield broker
    clients.close_all()
    broker.stop()


def _props(data: str) -> dict:
    return {"authentication_method": METHOD, "authentication_data": data.encode()}


def _exchange(raw: RawClient, scram: ScramClient, first_packet) -> object:
    """Send the client-first message in `first_packet`, answer the server-first; the broker's last packet."""
    raw.send(first_packet)
    challenge = raw.recv()
    assert isinstance(challenge, Auth) and challenge.reason_code == 0x18, challenge
    assert challenge.properties["authentication_method"] == METHOD
    scram.set_server_first(challenge.properties["authentication_data"].decode())
    raw.send(Auth(0x18, _props(scram.get_client_final())))
    return raw.recv()


def test_scram_connect_and_reauthentication(scram_broker):
    raw = RawClient(scram_broker.port)
    scram = ScramClient([METHOD], "alice", "wonder")
    connack = _exchange(raw, scram, Connect(clients.unique(), protocol_level=5, username="alice",
                                            properties=_props(scram.get_client_first())))
    assert isinstance(connack, Connack) and connack.reason_code == 0, connack
    scram.set_server_final(connack.properties["authentication_data"].decode())   # proves the server knew the key
    again = ScramClient([METHOD], "alice", "wonder")
    done = _exchange(raw, again, Auth(0x19, _props(again.get_client_first())))
    assert isinstance(done, Auth) and done.reason_code == 0, done
    again.set_server_final(done.properties["authentication_data"].decode())


def test_scram_wrong_password_is_refused(scram_broker):
    raw = RawClient(scram_broker.port)
    scram = ScramClient([METHOD], "alice", "not wonder")
    connack = _exchange(raw, scram, Connect(clients.unique(), protocol_level=5, username="alice",
                                            properties=_props(scram.get_client_first())))
    assert isinstance(connack, Connack) and connack.reason_code == 0x86
