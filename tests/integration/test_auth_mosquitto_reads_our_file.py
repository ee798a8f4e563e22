"""A real Mosquitto broker accepts the users `actormq passwd` writes (and refuses a wrong password)."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time

import pytest

from tests.integration.brokers import _free_port, run_cli

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
pytestmark = pytest.mark.skipif(not shutil.which("mosquitto_pub") or not shutil.which(MOSQUITTO),
                                reason="mosquitto and mosquitto-clients (Debian packages) not installed")


def _publish(port: int, user: str, password: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "t", "-m", "x",
                           "-u", user, "-P", password], capture_output=True, text=True, timeout=10)


def test_mosquitto_reads_actormq_passwd_file(tmp_path):
    pwfile = tmp_path / "passwd"
    assert run_cli("passwd", "-c", "-b", str(pwfile), "alice", "wonder land").returncode == 0
    assert run_cli("passwd", "-b", str(pwfile), "root", "toor", "-s").returncode == 0
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n")
    broker = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while (result := _publish(port, "alice", "wonder land")).returncode != 0 and time.monotonic() < deadline:
            if "not authorised" in result.stderr.lower():
                break
            time.sleep(0.1)
        assert result.returncode == 0, result.stderr
        assert _publish(port, "root", "toor").returncode == 0
        wrong = _publish(port, "alice", "wonderland")
        assert wrong.returncode != 0 and "not authorised" in wrong.stderr.lower()
    finally:
        broker.terminate()
        broker.wait(10)
