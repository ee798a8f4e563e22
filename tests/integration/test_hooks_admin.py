"""Plugins of a running broker of two workers, through the control channel:
`actormq plugin show` (order, hooks, calls, latency), `disable` / `enable`
(the chain changes at once in every worker), `reload` (a changed module is
imported again and swapped in while the clients stay connected), and
/api/v4/plugins (list, load, unload, reload)."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.brokers import actormq_only, start_broker
from tests.integration.clients import connect, unique
from tests.integration.hookplugins import PLUGIN_DIR, worker_ports
from tests.integration.mgmtapi import call, cli, get

pytestmark = pytest.mark.timeout(90)

RELOADABLE = '''
from actormq.hooks import Plugin, modified


class Reloadable(Plugin):
    """Marks payloads under mark/ with its version."""

    name = "reloadable"

    def on_message_publish(self, client, message):
        if message.topic_name.startswith("mark/"):
            return modified(message, payload=message.payload + b"|VERSION")
        return None
'''


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    actormq_only("actormq plugins")
    workdir = tmp_path_factory.mktemp("admin")
    plugins = workdir / "plugins"
    plugins.mkdir()
    (plugins / "reloadable.py").write_text(RELOADABLE.replace("VERSION", "v1"))
    broker = start_broker(workdir, workers=2, settings={
        "plugins.paths": f"{plugins}:{PLUGIN_DIR}", "plugins.order": "reloadable, crasher",
        "listener.tcp.worker_ports": "true"})
    broker.plugins = plugins
    broker.ports = worker_ports(broker, 2)
    yield broker
    broker.stop()


class Marks:
    """A publisher on worker 0 and a subscriber on worker 1 that stay connected."""

    def __init__(self, node) -> None:
        self.topic = f"mark/{unique()}"
        self.subscriber = connect(node.ports[1], unique())
        self.subscriber.subscribe(self.topic, qos=1)
        self.publisher = connect(node.ports[0], unique())

    def payload(self) -> bytes:
        self.publisher.publish(self.topic, b"m", qos=1)
        return self.subscriber.expect_one().payload


def test_show_lists_each_worker_plugins_in_order_with_their_stats(node):
    Marks(node).payload()
    result = cli(node, "plugin", "show", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sorted({row["worker"] for row in rows}) == [0, 1]
    for worker in (0, 1):
        mine = [row for row in rows if row["worker"] == worker]
        assert [(row["order"], row["name"]) for row in mine] == [(1, "reloadable"), (2, "crasher")]
        assert mine[0]["hooks"] == ["message.publish"]
        assert mine[1]["hooks"] == ["client.authorize_publish"]
    assert sum(row["calls"] for row in rows if row["name"] == "reloadable") >= 1
    assert all(row["p99_ms"] >= row["mean_ms"] >= 0 for row in rows)
    table = cli(node, "plugin", "show")
    assert "reloadable" in table.stdout and "p99_ms" in table.stdout


def test_disable_and_enable_change_every_worker_chain_at_once(node):
    marks = Marks(node)
    assert marks.payload() == b"m|v1"
    result = cli(node, "plugin", "disable", "reloadable")
    assert result.returncode == 0 and "disabled on 2 worker(s)" in result.stdout
    assert marks.payload() == b"m"
    assert cli(node, "plugin", "enable", "reloadable").returncode == 0
    assert marks.payload() == b"m|v1"


def test_reload_swaps_a_changed_module_in_without_dropping_clients(node):
    marks = Marks(node)
    assert marks.payload() == b"m|v1"
    (node.plugins / "reloadable.py").write_text(RELOADABLE.replace("VERSION", "v2"))
    result = cli(node, "plugin", "reload", "reloadable")
    assert result.returncode == 0, result.stderr
    assert marks.payload() == b"m|v2"
    assert not marks.publisher.closed.is_set() and not marks.subscriber.closed.is_set()
    (node.plugins / "reloadable.py").write_text(RELOADABLE.replace("VERSION", "v1"))
    assert cli(node, "plugin", "reload", "reloadable").returncode == 0
    assert marks.payload() == b"m|v1"


def test_a_reload_that_does_not_import_keeps_the_running_plugin(node):
    marks = Marks(node)
    (node.plugins / "reloadable.py").write_text("def broken(:\n")
    time.sleep(0.01)
    result = cli(node, "plugin", "reload", "reloadable")
    assert result.returncode == 1 and "does not import: SyntaxError" in result.stderr
    assert marks.payload() == b"m|v1"
    (node.plugins / "reloadable.py").write_text(RELOADABLE.replace("VERSION", "v1"))


def test_an_unknown_plugin_name_is_one_line_and_exit_1(node):
    result = cli(node, "plugin", "disable", "nosuch")
    assert result.returncode == 1
    assert "no plugin named 'nosuch' is loaded (loaded: reloadable, crasher)" in result.stderr


def test_the_management_api_lists_the_plugins(node):
    body = get(node, "/api/v4/plugins")
    names = [plugin["name"] for plugin in body["data"][0]["plugins"]]
    assert names == ["crasher", "reloadable"]
    assert all(plugin["active"] for plugin in body["data"][0]["plugins"])


def test_the_management_api_unloads_loads_and_reloads_a_plugin(node):
    marks = Marks(node)
    status, body = call(node, "PUT", "/api/v4/plugins/reloadable/unload")
    assert (status, body["code"]) == (200, 0)
    assert marks.payload() == b"m"
    node_name = get(node, "/api/v4/plugins")["data"][0]["node"]
    status, body = call(node, "PUT", f"/api/v4/nodes/{node_name}/plugins/reloadable/load")
    assert (status, body["code"]) == (200, 0), body
    assert marks.payload() == b"m|v1"
    status, body = call(node, "PUT", "/api/v4/plugins/reloadable/reload")
    assert (status, body["code"]) == (200, 0)
    assert marks.payload() == b"m|v1"
    status, body = call(node, "PUT", "/api/v4/plugins/nosuch/load")
    assert status == 400 and "no plugin named 'nosuch'" in body["message"]
