"""Loading plugins from a config: by plugins.paths and name, in order, with their
plugin.<name>.<key> settings checked against their schema; every mistake is one
line naming the file, line and key (exit 2), never a traceback; bad input
to `actormq plugin new`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from actormq.cli import main
from actormq.conf import load_config
from actormq.errors import ConfigError
from actormq.hooks import HookPoint
from actormq.hooks.loader import build_hooks, check_plugins

REPO = Path(__file__).resolve().parents[2]
TEST_PLUGINS = REPO / "tests" / "integration" / "plugins"


def write_config(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "actormq.conf"
    path.write_text("\n".join([f"plugins.paths = {TEST_PLUGINS}", *lines]) + "\n")
    return path


def check(path: Path):
    return check_plugins(load_config(path, env={}), path)


def test_plugins_load_in_the_configured_order_with_typed_settings(tmp_path):
    path = write_config(tmp_path, "plugins.order = second, gatekeeper, first",
                        "plugin.gatekeeper.max_payload = 2KB", "plugin.first.timeout = 0.5")
    specs = check(path)
    assert [spec.name for spec in specs] == ["second", "gatekeeper", "first"]
    assert specs[1].settings["max_payload"] == 2048 and specs[1].settings["mountpoint"] == "tenant1/"
    assert specs[2].settings["timeout"] == 0.5 and specs[2].settings["failure_policy"] == "deny"
    hooks = build_hooks(load_config(path, env={}), specs)
    assert [p.name for p in hooks.message_publish.providers] == ["second", "gatekeeper", "first"]
    assert hooks.chain(HookPoint.CLIENT_CONNECTED) is None


@pytest.mark.parametrize("lines, message", [
    (("plugins.order = gatekeeper", "plugin.gatekeeper.max_paylod = 1KB"),
     "actormq.conf:3, key 'plugin.gatekeeper.max_paylod': plugin gatekeeper has no setting "
     "'max_paylod' (did you mean 'plugin.gatekeeper.max_payload'?)"),
    (("plugins.order = gatekeeper", "plugin.gatekeeper.max_payload = lots"),
     "actormq.conf:3, key 'plugin.gatekeeper.max_payload': expected a byte size"),
    (("plugins.order = gatekeeper", "plugin.gatekeeper.failure_policy = maybe"),
     "actormq.conf:3, key 'plugin.gatekeeper.failure_policy': expected one of deny, ignore"),
    (("plugins.order = nosuch",),
     "actormq.conf:2, key 'plugins.order': no plugin named 'nosuch'"),
    (("plugins.order = first, first",), "key 'plugins.order': a plugin is named twice"),
    (("plugins.order = first", "plugin.ghost.x = 1"),
     "actormq.conf:3, key 'plugin.ghost.x': plugin 'ghost' is not loaded (add it to plugins.order)"),
])
def test_config_mistakes_name_the_file_line_and_key(tmp_path, lines, message):
    with pytest.raises(ConfigError) as caught:
        check(write_config(tmp_path, *lines))
    assert message in str(caught.value)


def test_a_plugin_that_does_not_import_is_a_config_error(tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    path = tmp_path / "actormq.conf"
    path.write_text(f"plugins.paths = {tmp_path}\nplugins.order = broken\n")
    with pytest.raises(ConfigError, match="plugin 'broken' does not import: "
                                          "ModuleNotFoundError"):
        check(path)


def test_a_plugin_with_a_misnamed_hook_is_a_config_error(tmp_path):
    (tmp_path / "typo.py").write_text(
        "from actormq.hooks import Plugin\n\nclass Typo(Plugin):\n    name = 'typo'\n\n"
        "    def on_publsh(self, client, message):\n        return None\n")
    path = tmp_path / "actormq.conf"
    path.write_text(f"plugins.paths = {tmp_path}\nplugins.order = typo\n")
    with pytest.raises(ConfigError, match="on_publsh is not a hook point"):
        check(path)


def test_config_check_and_run_exit_2_with_one_line(tmp_path):
    path = write_config(tmp_path, "plugins.order = gatekeeper", "plugin.gatekeeper.max_payload = lots")
    for args in (("config", "check", "-c", str(path)), ("run", "-c", str(path), "--port", "0")):
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 2
        assert result.output.strip().startswith(f"actormq: error: {path}:3, key 'plugin.gatekeeper.")
        assert "Traceback" not in result.output


def test_settings_from_the_environment_are_named_as_such(tmp_path):
    path = write_config(tmp_path, "plugins.order = gatekeeper")
    config = load_config(path, env={"ACTORMQ__PLUGIN__GATEKEEPER__MAX_PAYLOAD": "x"})
    with pytest.raises(ConfigError, match="environment variable ACTORMQ__PLUGIN__GATEKEEPER__MAX_PAYLOAD"):
        check_plugins(config, path)


@pytest.mark.parametrize("args, message", [
    (("plugin", "new", "x", "--hooks", "on_nothing"), "unknown hook point 'on_nothing'"),
    (("plugin", "new", "Bad-Name", "--hooks", "on_publish"), "a plugin name is a Python module name"),
])
def test_plugin_new_refuses_bad_input_with_one_line(tmp_path, args, message):
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output


def test_a_plugin_is_found_by_its_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "epplug-0.1.dist-info").mkdir(parents=True)
    (site / "epplug-0.1.dist-info" / "METADATA").write_text("Name: epplug\nVersion: 0.1\n")
    (site / "epplug-0.1.dist-info" / "entry_points.txt").write_text(
        "[actormq.plugins]\nepplug = epplug_impl:Entry\n")
    (site / "epplug_impl.py").write_text(
        "from actormq.hooks import Plugin\n\nclass Entry(Plugin):\n    name = 'epplug'\n\n"
        "    def on_client_connected(self, client):\n        pass\n")
    monkeypatch.syspath_prepend(str(site))
    path = tmp_path / "actormq.conf"
    path.write_text("plugins.order = epplug\n")
    [spec] = check(path)
    assert spec.cls.__name__ == "Entry" and spec.origin == "entry point epplug_impl:Entry"


def test_a_built_in_loads_when_its_config_wants_it_after_the_named_ones(tmp_path, monkeypatch):
    from actormq.hooks import loader

    monkeypatch.setattr(loader, "BUILTINS", {"gatekeeper": "gatekeeper:Gatekeeper"})
    monkeypatch.syspath_prepend(str(TEST_PLUGINS))
    import gatekeeper
    monkeypatch.setattr(gatekeeper.Gatekeeper, "wanted",
                        classmethod(lambda cls, config: config["plugins.default.unsubscribe"] == "deny"))
    wanting = write_config(tmp_path, "plugins.order = first", "plugins.default.unsubscribe = deny")
    assert [spec.name for spec in check(wanting)] == ["first", "gatekeeper"]
    named = write_config(tmp_path, "plugins.order = gatekeeper, first")
    assert [spec.name for spec in check(named)] == ["gatekeeper", "first"]
    not_wanted = write_config(tmp_path, "plugins.order = first")
    assert [spec.name for spec in check(not_wanted)] == ["first"]


def test_a_builtin_whose_extra_is_missing_is_not_imported_when_not_configured(monkeypatch) -> None:
    """A broker installed without the exhook extra (no protobuf) starts when no
    ExHook server is configured, and says what is missing when one is."""
    import sys

    from actormq.conf.load import default_config
    from actormq.errors import ConfigError
    from actormq.hooks.loader import check_plugins

    for name in list(sys.modules):
        if name.startswith(("actormq.exhook.plugin", "actormq.exhook.server", "actormq.exhook.convert",
                            "actormq.exhook.exhook_pb2", "google.protobuf", "grpc")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "google", None)
    monkeypatch.setitem(sys.modules, "grpc", None)
    config = default_config()
    assert "exhook" not in [spec.name for spec in check_plugins(config)]
    with pytest.raises(ConfigError, match="exhook"):
        check_plugins(config.with_overrides({"exhook.server.a.url": "http://127.0.0.1:9"}))
