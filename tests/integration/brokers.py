"""Running a real broker process for the integration tests.

`start_broker` launches `python -m actormq run` on port 0 from the repo root and
reads the bound port back from its banner. With ACTORMQ_TEST_BROKER=mosquitto it
launches Mosquitto 2.x instead, with a generated config that mirrors the actormq
settings that have a Mosquitto equivalent (see MOSQUITTO_SETTINGS); a test that
needs a setting without one is skipped as actormq-specific.

The returned `Broker` owns the process: its stdout/stderr are drained by
background threads into buffers (so the pipes never fill), and it can be
stopped cleanly, killed with SIGKILL or restarted on the same data dir.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (\S+):(\d+)")
API_URL = re.compile(r"management api: (\S+)/api/v4")
MOSQUITTO_READY = re.compile(r"mosquitto version \S+ running")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
HOST = "127.0.0.1"


def reference_broker() -> str | None:
    """The name of the reference broker the suite runs against, or None for actormq."""
    name = os.environ.get("ACTORMQ_TEST_BROKER", "").strip().lower()
    return name or None


# $SYS topics whose name differs on a reference broker.
REFERENCE_SYS_TOPICS = {
    "mosquitto": {"$SYS/broker/messages/dropped": "$SYS/broker/publish/messages/dropped"},
}


def sys_topic(name: str) -> str:
    """The broker's name for one of actormq's $SYS topics."""
    return REFERENCE_SYS_TOPICS.get(reference_broker() or "", {}).get(name, name)


def expected_reason(code: int, **deviations: int | None) -> int | None:
    """The reason code a test expects: `code` from actormq (the spec's), or the
    documented deviation of the reference broker in use, by name (None: that
    broker closes the connection without sending DISCONNECT)."""
    name = reference_broker()
    return deviations.get(name, code) if name else code


def actormq_only(why: str = "actormq-specific") -> None:
    """Skip the calling test when it runs against a reference broker."""
    if reference_broker():
        pytest.skip(why)


class _Drain:
    """Reads one pipe line by line in a daemon thread; remembers every line."""

    def __init__(self, pipe, watch: re.Pattern | None = None) -> None:
        self.lines: list[str] = []
        self.match: re.Match | None = None
        self.matched = threading.Event()
        self.closed = threading.Event()
        self._watch = watch
        self._thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self._thread.start()

    def _run(self, pipe) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if self._watch and not self.matched.is_set():
                found = self._watch.search(line)
                if found:
                    self.match = found
                    self.matched.set()
        self.closed.set()

    def text(self) -> str:
        return "".join(self.lines)


def _parse_size(value: str) -> int:
    units = {"KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "B": 1}
    text = str(value).strip().upper()
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def _storage_lines(value: str) -> list[str]:
    if value == "ram":
        return ["persistence false"]
    # Save after every change so acknowledged messages survive a SIGKILL as
    # far as Mosquitto allows; the save happens after the PUBACK, not before.
    return ["persistence true", "autosave_interval 1", "autosave_on_changes true"]


MOSQUITTO_SETTINGS = {
    "sys_interval": lambda v: [f"sys_interval {int(v)}"],
    "mqtt.max_qos": lambda v: [f"max_qos {int(v)}"],
    "mqtt.max_packet_size": lambda v: [f"max_packet_size {_parse_size(v)}"],
    "mqtt.receive_maximum": lambda v: [f"max_inflight_messages {int(v)}"],
    "mqtt.topic_alias_maximum": lambda v: [f"max_topic_alias {int(v)}"],
    "queue.max_offline_messages": lambda v: [f"max_queued_messages {int(v)}"],
    "queue.max_inflight": lambda v: [f"max_inflight_messages {int(v)}"],
    "queue.storage": _storage_lines,
    "retained.storage": _storage_lines,
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Broker:
    """One broker process started for a test; see the module docstring."""

    def __init__(self, workdir: Path, args: tuple[str, ...], settings: dict, workers: int) -> None:
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.args = tuple(args)
        self.settings = dict(settings)
        self.workers = workers
        self.reference = reference_broker()
        self.host = HOST
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._stdout: _Drain | None = None
        self._stderr: _Drain | None = None
        self._old_logs: list[str] = []
        if self.reference:
            self._mosquitto_config()  # skips early when a setting has no equivalent

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "Broker":
        if self.reference:
            self._spawn_mosquitto()
        else:
            self._spawn_actormq()
        return self

    def stop(self) -> None:
        """SIGTERM, wait for the exit and insist on exit code 0."""
        if not self.running:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"broker did not stop within {STOP_TIMEOUT}s\n{self.log()}")
        self._join_drains()
        assert code == 0, f"broker exited with {code}\n{self.log()}"

    def kill9(self) -> None:
        """SIGKILL the node and its workers (the node alone is no crash: its
        workers see it gone and stop cleanly, flushing the store)."""
        if self.running:
            node = psutil.Process(self.proc.pid)
            node.suspend()          # it must not start a new worker in between
            for child in node.children(recursive=True):
                child.kill()
            self.proc.kill()
            self.proc.wait()
            self._join_drains()

    def restart(self) -> "Broker":
        """Stop (if running) and start again on the same data dir and settings."""
        self.stop()
        self._old_logs.append(self._stderr.text() if self._stderr else "")
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """Everything the broker wrote to stderr so far (across restarts)."""
        current = self._stderr.text() if self._stderr else ""
        return "".join(self._old_logs) + current

    def stdout(self) -> str:
        return self._stdout.text() if self._stdout else ""

    @property
    def api_url(self) -> str:
        """Base URL of the management API (from the banner, printed with the listening line)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = API_URL.search(self.stdout())
            if found:
                return found.group(1)
            time.sleep(0.02)
        raise AssertionError(f"no management api line in the banner\n{self.stdout()}")

    def __repr__(self) -> str:
        return f"Broker({self.reference or 'actormq'} {self.host}:{self.port})"

    # -- actormq -----------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "actormq", "run", "-w", str(self.workers),
               "--host", HOST, "--port", "0", "--data-dir", str(self.data_dir),
               "--set", "sys_interval=0", "--set", "management.listener.http=127.0.0.1:0"]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd + list(self.args)

    def _spawn_actormq(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        self._popen(self.command(), env)
        self._await(self._stdout, "listening on HOST:PORT")
        self.host, self.port = self._stdout.match.group(1), int(self._stdout.match.group(2))

    # -- mosquitto ---------------------------------------------------------

    def _mosquitto_config(self) -> list[str]:
        unknown = [k for k in self.settings if k not in MOSQUITTO_SETTINGS]
        if unknown or self.args or self.workers != 1:
            pytest.skip(f"actormq-specific ({', '.join(unknown) or 'cli args'})")
        lines = {"sys_interval": ["sys_interval 0"]}
        for key, value in self.settings.items():
            lines[key] = MOSQUITTO_SETTINGS[key](value)
        body = list(dict.fromkeys(line for group in lines.values() for line in group))
        if not any(line.startswith("persistence ") for line in body):
            body.append("persistence true")
        return body

    def _spawn_mosquitto(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join([
            f"listener {self.port} {HOST}", "allow_anonymous true",
            f"persistence_location {self.data_dir}/", "log_dest stderr",
            "log_type all", f"user {pwd.getpwuid(os.getuid()).pw_name}",  # keep write access
            *self._mosquitto_config()]) + "\n")
        self._popen([binary, "-c", str(conf)], dict(os.environ))
        self._await(self._stderr, "mosquitto ... running")

    # -- plumbing ----------------------------------------------------------

    def _popen(self, cmd: list[str], env: dict) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        watch_out = None if self.reference else LISTENING
        watch_err = MOSQUITTO_READY if self.reference else None
        self._stdout = _Drain(self.proc.stdout, watch_out)
        self._stderr = _Drain(self.proc.stderr, watch_err)

    def _await(self, drain: _Drain, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not drain.matched.wait(0.05):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill9()
                raise AssertionError(
                    f"broker did not print '{what}' within {START_TIMEOUT}s "
                    f"(exit code {self.proc.returncode})\n--- stdout ---\n{self.stdout()}"
                    f"--- stderr ---\n{self.log()}")

    def _join_drains(self) -> None:
        for drain in (self._stdout, self._stderr):
            if drain:
                drain.closed.wait(2.0)


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Run `python -m actormq ARGS` from the repo root and capture its output."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "actormq", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def start_broker(tmp_path: Path, *args: str, settings: dict | None = None,
                 workers: int = 1) -> Broker:
    """Start a broker with its data dir under tmp_path; the caller stops it."""
    return Broker(tmp_path, args, settings or {}, workers).start()
