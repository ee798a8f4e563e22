"""The pure parts of issue-level operations: the CONNECT size limit of the
stream decoder, the config reload registry, the data dir lock, the port claim."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from actormq.conf import default_config
from actormq.datadir import DataDirLock
from actormq.errors import ActormqError, ProtocolError, TransportError
from actormq.reload import Reloader, changed_keys
from actormq.transport.codec import Connect, Publish, ReasonCode, StreamDecoder, encode
from actormq.transport.listeners import bind_reuseport, claim_port


# -- the CONNECT limit -------------------------------------------------------------------

def test_connect_over_the_connect_limit_refused_from_the_fixed_header_with_its_version():
    packet = encode(Connect("c", protocol_level=5, password=b"p" * 2000, username="u"), 5)
    decoder = StreamDecoder(max_packet_size=1 << 20, max_connect_packet_size=1000)
    with pytest.raises(ProtocolError) as caught:
        decoder.feed(packet[:20])           # the header and the protocol level: enough
    assert caught.value.reason_code == ReasonCode.PACKET_TOO_LARGE
    assert decoder.version == 5


@given(st.integers(min_value=1, max_value=64))
def test_after_the_connect_the_full_limit_applies_however_the_stream_is_cut(chunk):
    stream = encode(Connect("c", protocol_level=4), 4) + encode(Publish("t", b"x" * 3000), 4)
    decoder = StreamDecoder(max_packet_size=10_000, max_connect_packet_size=100)
    packets = []
    for start in range(0, len(stream), chunk):
        packets += decoder.feed(stream[start:start + chunk])
    assert [type(p) for p in packets] == [Connect, Publish]
    assert packets[1].payload == b"x" * 3000


# -- reload ------------------------------------------------------------------------------------

def test_reload_applies_registered_keys_and_names_the_rest():
    old = default_config()
    new = old.with_overrides({"log.level": "debug", "mqtt.max_packet_size": "2KB",
                              "listener.tcp.backlog": "77"})
    seen = []
    reloader = Reloader()
    reloader.on_reload(("log.level",), lambda config: seen.append(("log", config["log.level"])))
    reloader.on_reload(("mqtt.",), lambda config: seen.append(("mqtt", config["mqtt.max_packet_size"])))
    reloader.on_reload(("queue.",), lambda config: seen.append(("queue", None)))
    effective, result = reloader.apply(old, new)
    assert seen == [("log", "debug"), ("mqtt", 2048)]
    assert result.applied == ("log.level", "mqtt.max_packet_size")
    assert result.needs_restart == ("listener.tcp.backlog",)
    assert effective["mqtt.max_packet_size"] == 2048
    assert effective["listener.tcp.backlog"] == old["listener.tcp.backlog"]


def test_reload_callback_that_fails_is_logged_and_the_others_run(caplog):
    old = default_config()
    new = old.with_overrides({"log.level": "debug"})
    ran = []
    reloader = Reloader()
    reloader.on_reload(("log.level",), lambda config: 1 / 0)
    reloader.on_reload(("log.",), lambda config: ran.append(True))
    reloader.apply(old, new)
    assert ran == [True]
    assert "reloading log.level failed" in caplog.text


def test_always_hooks_run_on_every_reload():
    config = default_config()
    ran = []
    reloader = Reloader()
    reloader.on_reload(("auth.password_file",), lambda c: ran.append(True), always=True)
    _effective, result = reloader.apply(config, config)
    assert ran == [True] and result.applied == () and changed_keys(config, config) == []


# -- the data dir lock -----------------------------------------------------------------------------

def test_data_dir_lock_is_exclusive_and_names_the_holder(tmp_path):
    lock = DataDirLock(str(tmp_path / "data"))
    other = subprocess.run([sys.executable, "-c",
                            "import sys; from actormq.datadir import DataDirLock; DataDirLock(sys.argv[1])",
                            str(tmp_path / "data")], capture_output=True, text=True)
    assert f"data dir {tmp_path / 'data'} is in use by pid {os.getpid()}" in other.stderr
    lock.release()
    DataDirLock(str(tmp_path / "data")).release()


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ActormqError, match="cannot use data dir .*: not a directory"):
        DataDirLock(str(tmp_path / "file"))


# -- the port claim ---------------------------------------------------------------------------------

def test_workers_share_a_claimed_port_and_a_second_claim_is_refused():
    claim = claim_port("127.0.0.1", 0)
    try:
        workers = [bind_reuseport("127.0.0.1", claim.port) for _ in range(2)]
        with pytest.raises(TransportError, match=rf"cannot listen on 127.0.0.1:{claim.port}: "
                                                 "address already in use"):
            claim_port("127.0.0.1", claim.port)
        with pytest.raises(TransportError, match="address already in use"):
            claim_port("0.0.0.0", claim.port)
        for sock in workers:
            sock.close()
    finally:
        claim.close()


def test_two_claims_before_any_worker_listens_one_wins():
    """Both bind before a listener exists: the named lock refuses the second."""
    first = claim_port("127.0.0.1", 0)
    try:
        with pytest.raises(TransportError, match="address already in use"):
            claim_port("127.0.0.1", first.port)
    finally:
        first.close()
    claim_port("127.0.0.1", first.port).close()      # released with the holder
