"""Password file and ACL file on a real broker: CONNACK codes, SUBACK and PUBACK
refusals, superuser, placeholders, the file re-read on change, bad lines and
an unreadable file at start; paho and mosquitto_pub/sub with -u/-P."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from actormq.auth.hashes import make_pbkdf2_hash
from tests.integration import clients
from actormq.transport.codec import Puback, Publish
from tests.integration.brokers import actormq_only, run_cli, start_broker
from tests.integration.rawclient import RawClient

ACL = """\
%% seed 004's rules, then ours
{allow, {user, "dashboard"}, subscribe, ["$SYS/#"]}.
{deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.
{allow, {user, "alice"}, pubsub, ["a/#"]}.
{allow, all, pubsub, ["users/%u/#"]}.
{allow, {clientid, "sensor-1"}, publish, ["sensors/1"]}.
{deny, all}.
"""


def _passwd(path, *args) -> None:
    result = run_cli("passwd", *args[:1], str(path), *args[1:])
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    actormq_only("auth and ACL settings")
    workdir = tmp_path_factory.mktemp("auth")
    passwd = workdir / "passwd"
    passwd.write_text(f"alice:{make_pbkdf2_hash('secret')}\nroot:{make_pbkdf2_hash('toor')}:superuser\n"
                      "junk:plaintext\n")
    (workdir / "acl.conf").write_text(ACL)
    broker = start_broker(workdir / "broker", settings={
        "auth.password_file": str(passwd), "acl.file": str(workdir / "acl.conf"),
        "mqtt.allow_anonymous": "false"})
    broker.passwd = passwd
    yield broker
    clients.close_all()
    broker.stop()


@pytest.mark.parametrize("version,wrong,missing", [(4, 4, 5), (5, 0x86, 0x87)])
def test_connack_codes(secured, version, wrong, missing):
    ok = clients.connect(secured.port, clients.unique(), version=version, username="alice", password="secret")
    assert ok.connack.reason_code == 0
    bad_id = clients.unique("bad")
    bad = clients.connect(secured.port, bad_id, version=version, username="alice", password="nope", check=False)
    assert bad.connack.reason_code == wrong
    anonymous = clients.connect(secured.port, clients.unique(), version=version, check=False)
    assert anonymous.connack.reason_code == missing
    deadline = time.monotonic() + 5
    while f"{bad_id} (127.0.0.1:" not in secured.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(line for line in secured.log().splitlines() if bad_id in line)
    assert "INFO" in line and "refused by auth_file: 0x86" in line


def test_bad_password_file_line_is_numbered_and_skipped(secured):
    assert "line 3 skipped: plain-text password refused" in secured.log()


@pytest.mark.skipif(not shutil.which("mosquitto_pub"), reason="mosquitto-clients not installed")
def test_mosquitto_clients_with_user_and_password(secured):
    base = ["-h", "127.0.0.1", "-p", str(secured.port), "-t", "a/m", "-m", "x"]
    assert subprocess.run(["mosquitto_pub", *base, "-u", "alice", "-P", "secret"], timeout=10).returncode == 0
    wrong = subprocess.run(["mosquitto_pub", *base, "-u", "alice", "-P", "x"], capture_output=True, text=True,
                           timeout=10)
    assert wrong.returncode != 0 and "bad user name or password" in wrong.stderr.lower()


@pytest.mark.parametrize("version,denied", [(4, 0x80), (5, 0x87)])
def test_denied_subscription_gets_failure_code(secured, version, denied):
    alice = clients.connect(secured.port, clients.unique(), version=version, username="alice", password="secret")
    assert alice.subscribe("a/#", qos=1) == [1]
    assert alice.subscribe("b/#", qos=1) == [denied]
    assert alice.subscribe("#") == [denied]            # {eq, "#"}
    assert alice.subscribe("users/alice/+") == [0]     # %u
    assert alice.subscribe("users/bob/+") == [denied]


def test_denied_publish_is_refused_and_not_delivered(secured):
    watcher = clients.connect(secured.port, clients.unique(), username="root", password="toor")
    assert watcher.subscribe("+/#", qos=1) == [1]       # a superuser skips the ACL
    alice5 = clients.connect(secured.port, clients.unique(), username="alice", password="secret")
    refused = alice5.publish("b/x", b"no", qos=1)
    assert alice5.publish_codes[refused.mid] == 0x87
    alice4 = clients.connect(secured.port, clients.unique(), version=4, username="alice", password="secret")
    alice4.publish("b/y", b"no", qos=1)                # 3.1.1: acknowledged and dropped
    alice5.publish("a/ok", b"yes", qos=1)
    arrived = watcher.expect_one()
    assert (arrived.topic, arrived.payload) == ("a/ok", b"yes")
    watcher.expect_none()


def test_changed_password_file_is_read_again(secured):
    _passwd(secured.passwd, "-b", "carol", "c-pass")
    deadline = time.monotonic() + 5
    while True:
        carol = clients.connect(secured.port, clients.unique(), username="carol", password="c-pass", check=False)
        if carol.connack.reason_code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert carol.connack.reason_code == 0


def test_unreadable_password_file_stops_the_start(tmp_path):
    actormq_only("auth settings")
    result = run_cli("run", "-w", "1", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d"),
                     "--set", "management.listener.http=127.0.0.1:0",
                     "--set", f"auth.password_file={tmp_path / 'missing'}")
    assert result.returncode == 2
    assert "cannot read the password file" in result.stderr


def test_mosquitto_acl_grammar(make_broker, tmp_path):
    actormq_only("auth and ACL settings")
    passwd = tmp_path / "passwd"
    passwd.write_text(f"dev:{make_pbkdf2_hash('pw')}\n")
    acl = tmp_path / "acl"
    acl.write_text("user dev\ntopic readwrite dev/#\ntopic deny dev/secret\npattern read cmd/%c\n")
    broker = make_broker(settings={"auth.password_file": str(passwd), "acl.file": str(acl)})
    client = clients.connect(broker.port, "d1", username="dev", password="pw")
    assert client.subscribe("dev/x") == [0]
    assert client.subscribe("cmd/d1") == [0]
    assert client.subscribe("cmd/d2") == [0x87]
    assert client.publish_codes[client.publish("cmd/d1", b"x", qos=1).mid] == 0x87
    assert "2 rules" not in broker.log() and "(mosquitto format)" in broker.log()


@pytest.mark.parametrize("version", [4, 5])
def test_deny_action_disconnect(make_broker, tmp_path, version):
    actormq_only("ACL settings")
    acl = tmp_path / "acl.conf"
    acl.write_text('{allow, all, pubsub, ["ok/#"]}.\n{deny, all}.\n')
    broker = make_broker(settings={"acl.file": str(acl), "acl.deny_action": "disconnect"})
    raw = RawClient(broker.port, version=version)
    raw.connect(clients.unique())
    raw.send(Publish("ok/1", b"fine", qos=1, packet_id=1))
    assert isinstance(raw.recv(), Puback)
    raw.send(Publish("denied", b"no", qos=1, packet_id=2))
    if version == 5:
        assert raw.expect_disconnect(0x87) is not None
    else:
        assert raw.expect_closed() == []             # no PUBACK: the client is disconnected


def test_listener_mountpoint_acl_sees_the_clients_own_topics(make_broker, tmp_path):
    actormq_only("listener mountpoints and ACL settings")
    acl = tmp_path / "acl.conf"
    acl.write_text('{allow, all, pubsub, ["own/%u/#"]}.\n{deny, all}.\n')
    broker = make_broker(settings={"acl.file": str(acl), "listener.tcp.default.mountpoint": "tenant/%u/"})
    reader = clients.connect(broker.port, clients.unique(), username="ann", password="x")
    assert reader.subscribe("own/ann/#", qos=1) == [1]        # judged as written, not as tenant/ann/own/...
    assert reader.subscribe("tenant/ann/own/ann/#") == [0x87]
    writer = clients.connect(broker.port, clients.unique(), username="ann", password="x")
    writer.publish("own/ann/x", b"hello", qos=1)
    got = reader.expect_one()
    assert (got.topic, got.payload) == ("own/ann/x", b"hello")
