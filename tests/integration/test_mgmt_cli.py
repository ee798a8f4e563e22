"""The admin CLI as a subprocess against a real broker: it finds the node from
the data dir's state file (or --api/--user/--secret), prints vmq-admin tables
or JSON, exits 0 / 1 (error, one line) / 2 (usage), and says so clearly when
no broker runs."""

from __future__ import annotations

import json

import pytest

from tests.integration.brokers import run_cli
from tests.integration.clients import connect, unique
from tests.integration.mgmtapi import cli, credentials, module_broker

COMMANDS = (("session", "show"), ("session", "disconnect"), ("session", "unsubscribe"),
            ("retain", "show"), ("retain", "delete"), ("retain", "delete-expired"),
            ("metrics", "show"), ("metrics", "reset"), ("listener", "show"), ("node", "status"),
            ("config", "show"), ("log", "level"), ("trace", "client"), ("api-key", "show"))


@pytest.fixture(scope="module")
def cli_broker(tmp_path_factory):
    yield from module_broker(tmp_path_factory, "cli", settings={"management.max_row_limit": 2})


def _json(result) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_command_has_help_and_json():
    from click.testing import CliRunner

    from actormq.cli import main
    for command in COMMANDS:
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "--format" in result.output and "Usage:" in result.output, command


def test_no_running_broker_is_one_clear_line_and_exit_1(tmp_path):
    result = run_cli("session", "show", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == (f"actormq: error: no running broker found for data dir {tmp_path}; "
                             "start one with actormq run\n")


def test_usage_errors_exit_2(cli_broker):
    assert cli(cli_broker, "session", "disconnect", "client=x").returncode == 2
    assert cli(cli_broker, "log", "level", "loud").returncode == 2
    assert cli(cli_broker, "session", "show", "no_such_field").returncode == 2


def test_session_show_vmq_columns_table_and_json(cli_broker):
    prefix = unique("vmq")
    first = connect(cli_broker.port, f"{prefix}-1", version=4, username="ann")
    first.subscribe(f"{prefix}/a", qos=1)
    connect(cli_broker.port, f"{prefix}-2", version=5)
    connect(cli_broker.port, f"{prefix}-3", version=5)        # a page holds 2: the CLI reads two
    table = cli(cli_broker, "session", "show", f"--client_id={prefix}-1")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("+") and lines[0] == lines[2] == lines[-1]
    assert [cell.strip() for cell in lines[1].split("|")[1:-1]] == [
        "client_id", "is_online", "mountpoint", "peer_host", "peer_port", "user"]
    cells = [cell.strip() for cell in lines[3].split("|")[1:-1]]
    assert cells[0] == f"{prefix}-1" and cells[1] == "true" and cells[3] == "127.0.0.1" and cells[5] == "ann"
    rows = _json(cli(cli_broker, "session", "show", f"--client_id=~^{prefix}-", "client_id", "topic",
                     "qos", "protocol", "--format", "json"))
    assert [(r["client_id"], r["topic"], r["qos"], r["protocol"]) for r in rows] == [
        (f"{prefix}-1", f"{prefix}/a", 1, 4), (f"{prefix}-2", None, None, 5), (f"{prefix}-3", None, None, 5)]
    assert _json(cli(cli_broker, "session", "show", f"--client_id=~^{prefix}-", "--limit", "1",
                     "--format", "json"))[0]["client_id"] == f"{prefix}-1"


def test_session_disconnect_and_unsubscribe(cli_broker):
    client_id = unique("cut")
    topic = unique("cut/t")
    victim = connect(cli_broker.port, client_id, clean_start=False, properties={"session_expiry_interval": 60})
    victim.subscribe(topic, qos=1)
    result = cli(cli_broker, "session", "unsubscribe", f"client-id={client_id}", f"topic={topic}")
    assert result.returncode == 0 and result.stdout == "Done\n", result.stderr
    assert _json(cli(cli_broker, "session", "show", f"--client_id={client_id}", "topic", "--format",
                     "json"))[0]["topic"] is None
    result = cli(cli_broker, "session", "disconnect", f"client-id={client_id}")
    assert result.returncode == 0, result.stderr
    assert victim.wait_closed() and victim.disconnect_reason == 0x98
    [row] = _json(cli(cli_broker, "session", "show", f"--client_id={client_id}", "--format", "json"))
    assert row["is_online"] is False          # without --cleanup the session stays
    assert cli(cli_broker, "session", "disconnect", f"client-id={client_id}", "--cleanup").returncode == 0
    assert _json(cli(cli_broker, "session", "show", f"--client_id={client_id}", "--format", "json")) == []
    missing = cli(cli_broker, "session", "disconnect", "client-id=nobody-here")
    assert missing.returncode == 1 and "nobody-here" in missing.stderr


def test_retain_show_delete(cli_broker):
    topic = unique("cli/keep")
    publisher = connect(cli_broker.port, unique("rp"))
    publisher.wait_published(publisher.publish(f"{topic}/x", b"payload-x", qos=1, retain=True))
    rows = _json(cli(cli_broker, "retain", "show", "--topic", f"{topic}/#", "--payload", "--format", "json"))
    assert [(r["topic"], r["payload"], r["size"]) for r in rows] == [(f"{topic}/x", "payload-x", 9)]
    assert cli(cli_broker, "retain", "delete", "--topic", f"{topic}/x").returncode == 0
    assert _json(cli(cli_broker, "retain", "show", "--topic", f"{topic}/#", "--format", "json")) == []
    assert cli(cli_broker, "retain", "delete", "--topic", f"{topic}/x").returncode == 1
    assert _json(cli(cli_broker, "retain", "delete-expired", "--format", "json")) == {"deleted": 0}


def test_metrics_show_and_reset(cli_broker):
    connect(cli_broker.port, unique("m"))
    values = _json(cli(cli_broker, "metrics", "show", "--format", "json"))
    assert values["counter.clients_total_connects"] >= 1 and values["gauge.clients_connected"] >= 1
    assert {"worker.0.rss_bytes", "worker.1.rss_bytes", "storage.map_size", "bus.frames_sent"} <= set(values)
    text = cli(cli_broker, "metrics", "show")
    assert "counter.messages_received = " in text.stdout
    assert cli(cli_broker, "metrics", "reset").returncode == 0
    after = _json(cli(cli_broker, "metrics", "show", "--format", "json"))
    assert after["counter.clients_total_connects"] == 0 and after["gauge.clients_connected"] >= 1


def test_listener_node_config_log(cli_broker):
    rows = _json(cli(cli_broker, "listener", "show", "--format", "json"))
    assert any(r["listen_on"].endswith(f":{cli_broker.port}") and r["status"] == "running" for r in rows)
    status = _json(cli(cli_broker, "node", "status", "--format", "json"))
    assert status["version"] and len(status["workers"]) == 2 and status["storage_bytes"] > 0
    assert all(w["pid"] and w["rss_bytes"] > 0 for w in status["workers"])
    assert "worker" in cli(cli_broker, "node", "status").stdout
    running = _json(cli(cli_broker, "config", "show", "--running", "--format", "json"))
    values = {row["key"]: row for row in running}
    assert values["sys_interval"]["value"] == "0" and values["sys_interval"]["source"] == "flag"
    assert values["management.default_application.secret"]["value"] != credentials(cli_broker)[1]
    assert cli(cli_broker, "log", "level", "debug").returncode == 0
    connect(cli_broker.port, unique("debugged"))
    assert cli(cli_broker, "log", "level", "info").returncode == 0
    assert "keepalive" in cli_broker.log() or "connected" in cli_broker.log()


def test_explicit_api_url_and_credentials(cli_broker, tmp_path):
    user, secret = credentials(cli_broker)
    result = run_cli("node", "status", "--format", "json", "--api", cli_broker.api_url, "--user", user,
                     "--secret", secret, "--data-dir", str(tmp_path))
    assert _json(result)["node"] == "actormq@127.0.0.1"
    wrong = run_cli("node", "status", "--api", cli_broker.api_url, "--user", user, "--secret", "nope",
                    "--data-dir", str(tmp_path))
    assert wrong.returncode == 1 and "wrong application id or secret" in wrong.stderr
