"""The `actormq` command line: help, config errors (exit 2, one line), config and dump output."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from actormq import __version__
from actormq.cli import main
from actormq.conf import default_config, load_config
from actormq.conf.schema import render_default_config
from actormq.errors import StorageError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.upper().startswith("ACTORMQ__"):
            monkeypatch.delenv(name)


def invoke(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env)


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


# ---- help and version ----

@pytest.mark.parametrize("path", [(), *all_commands(main)], ids=lambda path: " ".join(path) or "actormq")
def test_help_of_every_command(path):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")


def test_top_level_help_lists_the_commands():
    output = invoke("--help").output
    for name in ("run", "config", "queues", "retained"):
        assert f"\n  {name} " in output


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output == f"actormq, version {__version__}\n"


def test_run_help_explains_how_to_choose_workers():
    output = " ".join(invoke("run", "--help").output.split())
    assert "one worker per CPU core" in output
    assert "about 35 MB RSS at idle" in output
    assert "-w 1 avoids that hop entirely" in output


# ---- run: errors before the broker starts ----

def test_run_unknown_set_key_exits_2_with_one_line():
    result = invoke("run", "--set", "queue.max_infligt=5")
    assert result.exit_code == 2
    assert result.stderr == ("actormq: error: command line, key 'queue.max_infligt': unknown key "
                             "(did you mean 'queue.max_inflight'?)\n")
    assert result.stdout == ""


def test_run_bad_set_value_exits_2():
    result = invoke("run", "--set", "queue.max_inflight=abc")
    assert result.exit_code == 2
    assert result.stderr == ("actormq: error: command line, key 'queue.max_inflight': "
                             "expected an integer, got 'abc'\n")


def test_run_set_without_equals_is_a_usage_error():
    result = invoke("run", "--set", "queue.max_inflight")
    assert result.exit_code == 2
    assert "expected key=value, got 'queue.max_inflight'" in result.stderr


def test_run_bad_config_file_line_exits_2_naming_the_line(tmp_path):
    path = tmp_path / "actormq.conf"
    path.write_text("listener.tcp.port = 1883\nqueue.max_inflight = lots\n")
    result = invoke("run", "-c", str(path))
    assert result.exit_code == 2
    assert result.stderr == (f"actormq: error: {path}:2, key 'queue.max_inflight': "
                             "expected an integer, got 'lots'\n")


def test_run_missing_config_file_exits_2(tmp_path):
    result = invoke("run", "-c", str(tmp_path / "missing.conf"))
    assert result.exit_code == 2
    assert result.stderr.startswith("actormq: error: ") and "cannot read config file" in result.stderr


def test_run_bad_environment_variable_exits_2():
    result = invoke("run", env={"ACTORMQ__QUEUE__MAX_INFLIGHT": "x"})
    assert result.exit_code == 2
    assert "environment variable ACTORMQ__QUEUE__MAX_INFLIGHT" in result.stderr


@pytest.mark.parametrize("args", [("--port", "70000"), ("-w", "-1"), ("--log-level", "loud")])
def test_run_bad_flag_is_a_usage_error(args):
    result = invoke("run", *args)
    assert result.exit_code == 2 and "Error: Invalid value" in result.stderr


def test_python_m_actormq_config_error_is_one_line_without_traceback():
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("ACTORMQ__")}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([sys.executable, "-m", "actormq", "run", "--set", "queue.max_inflight=abc"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "actormq: error: command line, key 'queue.max_inflight': expected an integer, got 'abc'"]


# ---- config show / check / default ----

def test_config_show_defaults():
    result = invoke("config", "show")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == len(default_config())
    assert lines[0].split() == ["listener.tcp.host", "=", "0.0.0.0", "#", "default"]
    assert "storage.map_size = 64MB" in result.output
    assert len({line.index("  # ") for line in lines}) == 1


def test_config_show_names_each_source(tmp_path):
    path = tmp_path / "actormq.conf"
    path.write_text("queue.max_inflight = 30\nqueue.max_online_messages = 31\n")
    result = invoke("config", "show", "-c", str(path), "--set", "queue.max_offline_messages=52",
                    env={"ACTORMQ__QUEUE__MAX_ONLINE_MESSAGES": "41"})
    assert result.exit_code == 0, result.output
    shown = {line.split(" = ")[0]: line.split(" = ")[1].split() for line in result.output.splitlines()}
    assert shown["queue.max_inflight"] == ["30", "#", "file"]
    assert shown["queue.max_online_messages"] == ["41", "#", "env"]
    assert shown["queue.max_offline_messages"] == ["52", "#", "flag"]
    assert shown["queue.type"] == ["fifo", "#", "default"]


def test_config_show_output_is_a_valid_config_file(tmp_path):
    result = invoke("config", "show", "--set", "node.name=a node # with a hash", "--set", "plugins.order=")
    path = tmp_path / "shown.conf"
    path.write_text(result.output)
    loaded = load_config(path, env={})
    assert loaded["node.name"] == "a node # with a hash" and loaded["plugins.order"] == ""
    assert loaded.as_dict() == default_config().replace(**{"node.name": "a node # with a hash"}).as_dict()


def test_config_show_bad_set_exits_2():
    result = invoke("config", "show", "--set", "mqtt.max_qos=3")
    assert result.exit_code == 2
    assert result.stderr == "actormq: error: command line, key 'mqtt.max_qos': 3 is out of range (0..2)\n"


def test_config_check(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text("queue.max_inflight = 30\n")
    bad = tmp_path / "bad.conf"
    bad.write_text("queue.max_inflight = 30\nqueue.type = stack\n")
    assert invoke("config", "check", "-c", str(good)).output == f"{good}: ok\n"
    result = invoke("config", "check", "-c", str(bad))
    assert result.exit_code == 2
    assert result.stderr == (f"actormq: error: {bad}:2, key 'queue.type': "
                             "expected one of fifo, lifo, got 'stack'\n")


def test_config_check_requires_a_file():
    assert invoke("config", "check").exit_code == 2


def test_config_default_prints_the_default_file():
    assert invoke("config", "default").output == render_default_config()


# ---- queues dump / retained dump (the CLI's side: options, rendering, progress, errors) ----

class DumpReader:
    """Stands in for actormq.storage.dump with fixed rows, recording how it was called."""

    def __init__(self, total=3, error=None):
        self.calls = []
        self.total = total
        self.error = error

    def module(self):
        module = types.ModuleType("actormq.storage.dump")
        module.iter_queues = self.iter_queues
        module.iter_retained = self.iter_retained
        return module

    def _report(self, progress):
        if self.error:
            raise self.error
        progress(0, self.total)
        progress(self.total, self.total)

    def iter_queues(self, data_dir, client_id=None, messages=False, progress=None):
        self.calls.append(("queues", data_dir, client_id, messages))
        self._report(progress)
        message = {"topic": "a/b", "qos": 1, "size": 5, "payload_preview": "hel\nlo", "timestamp": 0.0}
        yield {"client_id": "client-1", "state": "offline", "length": 1, "oldest": 0.0, "newest": 0.0,
               **({"messages": [message]} if messages else {})}
        yield {"client_id": "c2", "state": "online", "length": 0, "oldest": None, "newest": None,
               **({"messages": []} if messages else {})}

    def iter_retained(self, data_dir, progress=None):
        self.calls.append(("retained", data_dir))
        self._report(progress)
        yield {"topic": "sensors/1/temperature", "qos": 0, "size": 4, "payload_preview": "21.5",
               "timestamp": 0.0}


@pytest.fixture
def reader(monkeypatch):
    reader = DumpReader()
    monkeypatch.setitem(sys.modules, "actormq.storage.dump", reader.module())
    return reader


def test_queues_dump_table(reader, tmp_path):
    result = invoke("queues", "dump", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CLIENT_ID", "STATE", "LENGTH", "OLDEST", "NEWEST"]
    assert lines[1].split()[:3] == ["client-1", "offline", "1"]
    assert lines[2].split() == ["c2", "online", "0", "-", "-"]
    assert lines[0].index("STATE") == lines[1].index("offline") == lines[2].index("online")
    assert reader.calls == [("queues", str(tmp_path), None, False)]
    assert result.stderr == ""


def test_queues_dump_messages_and_client(reader):
    result = invoke("queues", "dump", "--client", "client-1", "--messages")
    assert result.exit_code == 0, result.output
    assert "messages of client-1:" in result.stdout
    assert "  TOPIC  QOS  SIZE  TIMESTAMP" in result.stdout
    assert "hel\\nlo" in result.stdout
    assert reader.calls == [("queues", "./data", "client-1", True)]


def test_queues_dump_json_and_data_dir_from_config(reader, tmp_path):
    path = tmp_path / "actormq.conf"
    path.write_text("storage.dir = /srv/actormq\n")
    result = invoke("queues", "dump", "--format", "json", "--messages", "-c", str(path))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["client_id"] for row in rows] == ["client-1", "c2"]
    assert rows[0]["messages"][0]["payload_preview"] == "hel\nlo"
    assert reader.calls[0][1] == "/srv/actormq"


def test_retained_dump_table_and_json(reader):
    table = invoke("retained", "dump")
    assert table.stdout.splitlines()[0].split() == ["TOPIC", "QOS", "SIZE", "TIMESTAMP", "PAYLOAD_PREVIEW"]
    assert table.stdout.splitlines()[1].split()[:3] == ["sensors/1/temperature", "0", "4"]
    assert json.loads(invoke("retained", "dump", "--format", "json").stdout)[0]["payload_preview"] == "21.5"


def test_progress_bar_only_for_big_stores(reader):
    assert invoke("retained", "dump").stderr == ""
    reader.total = 20_000
    result = invoke("retained", "dump")
    assert result.exit_code == 0
    assert "reading" in result.stderr and "sensors/1/temperature" in result.stdout


def test_storage_error_exits_2(reader):
    reader.error = StorageError("not an actormq data directory: /nowhere")
    result = invoke("queues", "dump", "--data-dir", "/nowhere")
    assert result.exit_code == 2
    assert result.stderr == "actormq: error: not an actormq data directory: /nowhere\n"


# ---- bench without its optional dependencies ----

def test_bench_without_its_extras_says_what_to_install():
    from actormq.cli import _bench_unavailable

    command = _bench_unavailable("matplotlib")
    result = CliRunner().invoke(command, ["throughput", "--clients", "10"])
    assert result.exit_code == 2
    assert result.stderr == ("actormq: error: actormq bench needs the module 'matplotlib'; "
                             "install it with: pip install 'actormq[bench]'\n")
    assert CliRunner().invoke(command, ["--help"]).exit_code == 0


# ---- the README's test command is what CI runs ----

def test_readme_test_command_is_the_one_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q"
    assert command in readme
    assert command in ci
