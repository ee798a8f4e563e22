"""`actormq webhooks ...` against a real broker through its control channel: a user's
vernemq.conf block pasted as is, runtime register / deregister that survive a restart,
VerneMQ's tables, the auth cache commands, bad input."""

from __future__ import annotations

import json

import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.mgmtapi import cli
from tests.unit.test_webhooks_plugin import VERNEMQ_WEBHOOKS_BLOCK

pytestmark = pytest.mark.usefixtures("_actormq")


@pytest.fixture
def _actormq():
    actormq_only("webhooks are actormq's")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("webhooks")
    config = workdir / "vernemq-style.conf"
    config.write_text(VERNEMQ_WEBHOOKS_BLOCK)
    broker = start_broker(workdir, "-c", str(config), workers=2)
    yield broker
    broker.stop()


def show(broker) -> list[dict]:
    result = cli(broker, "webhooks", "show", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_vernemq_conf_block_is_shown_in_lexical_order_as_vernemq_tables(broker):
    rows = show(broker)
    assert [row["hook"] for row in rows] == [
        "on_unsubscribe", "auth_on_subscribe", "auth_on_register", "auth_on_publish", "on_subscribe",
        "on_register", "on_publish", "on_offline_message", "on_deliver", "on_client_wakeup",
        "on_client_offline", "on_client_gone"]
    table = cli(broker, "webhooks", "show").stdout.splitlines()
    assert table[0] == table[2] == table[-1]
    assert table[0].startswith("+---") and table[1].startswith("|") and "base64payload" in table[1]
    assert "|  on_unsubscribe  |http://xxx.airdroid.com/mqtt/webhook|    true     |" in table[3]
    assert len(table) == 12 + 4


def test_runtime_registration_survives_a_restart_and_deregisters(broker):
    url = "http://127.0.0.1:9/mqtt/webhook"
    result = cli(broker, "webhooks", "register", "hook=on_deliver", f"endpoint={url}",
                 "--base64payload=false", "--response_timeout=700")
    assert result.returncode == 0 and result.stdout.strip() == "Done", result.stderr
    again = cli(broker, "webhooks", "register", "hook=on_deliver", f"endpoint={url}")
    assert again.returncode == 1 and "already registered" in again.stderr
    expected = {"hook": "on_deliver", "endpoint": url, "base64payload": False, "no_payload": False,
                "response_timeout": 700, "source": "runtime"}
    assert show(broker)[-1] == expected
    broker.restart()
    assert show(broker)[-1] == expected
    result = cli(broker, "webhooks", "deregister", "hook=on_deliver", f"endpoint={url}")
    assert result.returncode == 0, result.stderr
    assert all(row["source"] != "runtime" for row in show(broker))
    gone = cli(broker, "webhooks", "deregister", "hook=on_deliver", f"endpoint={url}")
    assert gone.returncode == 1 and "not registered" in gone.stderr


def test_cache_show_and_clear(broker):
    shown = cli(broker, "webhooks", "cache", "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1] == "|stat|endpoint|hook|value|"
    assert json.loads(cli(broker, "webhooks", "cache", "show", "--format", "json").stdout) == []
    cleared = cli(broker, "webhooks", "cache", "clear")
    assert cleared.returncode == 0 and cleared.stdout.strip() == "Done"


@pytest.mark.parametrize("args, code, message", [
    (("hook=on_teleport", "endpoint=http://127.0.0.1:1/"), 1, "unknown hook"),
    (("hook=on_publish", "endpoint=ftp://127.0.0.1/"), 1, "http"),
    (("hook=on_publish",), 2, "endpoint="),
    (("hook=on_publish", "endpoint=http://127.0.0.1:1/", "--response_timeout=0"), 2, "response_timeout"),
])
def test_bad_registrations_get_one_clear_line(broker, args, code, message):
    result = cli(broker, "webhooks", "register", *args)
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
