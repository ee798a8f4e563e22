"""The config schema and loader: defaults, value types, precedence and error messages."""

import pickle
import re
from pathlib import Path

import pytest

import actormq.conf
from actormq.conf import Config, default_config, load_config
from actormq.conf.schema import KEYS, SCHEMA, Kind, render_default_config
from actormq.errors import ConfigError

DEFAULT_FILE = Path(actormq.conf.__file__).with_name("actormq.conf")


def write_conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "actormq.conf"
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, env=None, overrides=None) -> Config:
    return load_config(write_conf(tmp_path, text), env={} if env is None else env, overrides=overrides)


def config_error(tmp_path: Path, text: str) -> tuple[ConfigError, Path]:
    path = write_conf(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return caught.value, path


# ---- defaults ----

def test_defaults_cover_every_key_and_come_from_default():
    config = default_config()
    assert list(config) == [key.name for key in KEYS]
    assert all(config.source(key) == "default" for key in config)


@pytest.mark.parametrize(("key", "value"), [
    ("listener.tcp.host", "0.0.0.0"), ("listener.tcp.port", 1883), ("listener.tcp.backlog", 1024),
    ("node.name", "actormq@127.0.0.1"), ("node.workers", 0), ("log.level", "info"),
    ("storage.dir", "./data"), ("storage.map_size", 64 << 20), ("storage.max_map_size", 16 << 30),
    ("storage.commit_batch", 1000), ("storage.commit_interval_ms", 0), ("storage.sync", "on"),
    ("retained.storage", "disc"), ("retained.max_messages", 0), ("retained.max_payload_size", 0),
    ("retained.expiry_interval", 0), ("queue.storage", "disc"), ("queue.max_inflight", 100),
    ("queue.max_online_messages", 1000), ("queue.max_offline_messages", 1000),
    ("queue.type", "fifo"), ("queue.drop", "newest"), ("mqtt.max_packet_size", 1 << 20),
    ("mqtt.max_client_id_len", 65535), ("mqtt.allow_anonymous", True),
    ("mqtt.allow_empty_client_id", True), ("mqtt.retain_available", True),
    ("mqtt.wildcard_subscription_available", True), ("mqtt.shared_subscription_available", True),
    ("mqtt.subscription_identifier_available", True), ("mqtt.max_qos", 2),
    ("mqtt.receive_maximum", 65535), ("mqtt.topic_alias_maximum", 65535),
    ("mqtt.server_keepalive", 0), ("mqtt.max_keepalive", 65535), ("mqtt.keepalive_multiplier", 1.5),
    ("mqtt.max_session_expiry_interval", 0), ("mqtt.persistent_client_expiration", 0),
    ("sys_interval", 10), ("bus.hwm", 100000), ("plugins.order", ""),
])
def test_default_value(key, value):
    actual = default_config()[key]
    assert actual == value and type(actual) is type(value)


def test_every_key_has_a_doc_line_and_enum_choices():
    for key in KEYS:
        assert key.doc and "\n" not in key.doc, key.name
        assert bool(key.choices) == (key.kind is Kind.ENUM), key.name


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.name)
def test_a_formatted_default_loads_back_from_a_file(key, tmp_path):
    assert load_text(tmp_path, f"{key.name} = {key.format(key.default)}\n")[key.name] == key.default


# ---- value types ----

@pytest.mark.parametrize(("key", "text", "value"), [
    ("queue.max_inflight", "50", 50),
    ("queue.max_inflight", " 7 ", 7),
    ("mqtt.keepalive_multiplier", "2", 2.0),
    ("mqtt.keepalive_multiplier", "1.25", 1.25),
    *[("mqtt.allow_anonymous", word, True) for word in ("true", "on", "yes", "1", "TRUE", "Yes")],
    *[("mqtt.allow_anonymous", word, False) for word in ("false", "off", "no", "0", "Off")],
    ("node.name", "broker@10.0.0.1", "broker@10.0.0.1"),
    ("log.level", "DEBUG", "debug"),
    ("queue.storage", "disc_only", "disc_only"),
    ("retained.max_payload_size", "64KB", 64 << 10),
    ("storage.map_size", "1MB", 1 << 20),
    ("storage.map_size", "1 mb", 1 << 20),
    ("storage.max_map_size", "16GB", 16 << 30),
    ("storage.max_map_size", "1TB", 1 << 40),
    ("storage.map_size", "2097152", 2 << 20),
    ("retained.max_payload_size", "100B", 100),
    ("retained.expiry_interval", "30s", 30),
    ("retained.expiry_interval", "5m", 300),
    ("retained.expiry_interval", "1h", 3600),
    ("retained.expiry_interval", "1d", 86400),
    ("retained.expiry_interval", "45", 45),
])
def test_parse_value(key, text, value):
    parsed = SCHEMA[key].parse(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(("key", "text", "message"), [
    ("queue.max_inflight", "lots", "expected an integer, got 'lots'"),
    ("queue.max_inflight", "1.5", "expected an integer, got '1.5'"),
    ("mqtt.keepalive_multiplier", "fast", "expected a number, got 'fast'"),
    ("mqtt.allow_anonymous", "maybe", "expected true/false (or on/off, yes/no, 1/0), got 'maybe'"),
    ("log.level", "verbose", "expected one of debug, info, warning, error, got 'verbose'"),
    ("storage.map_size", "64XB", "expected a byte size (e.g. 64KB, 1MB, 16GB or plain bytes), got '64XB'"),
    ("storage.map_size", "-1MB", "expected a byte size"),
    ("retained.expiry_interval", "1y",
     "expected a duration (e.g. 30s, 5m, 1h, 1d or plain seconds), got '1y'"),
    ("listener.tcp.port", "65536", "65536 is out of range (0..65535)"),
    ("listener.tcp.port", "-1", "-1 is out of range (0..65535)"),
    ("mqtt.receive_maximum", "0", "0 is out of range (1..65535)"),
    ("mqtt.max_qos", "3", "3 is out of range (0..2)"),
    ("storage.map_size", "1KB", "1KB is out of range (>= 1MB)"),
])
def test_bad_value_message(key, text, message):
    with pytest.raises(ValueError) as caught:
        SCHEMA[key].parse(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(("key", "value"), [
    ("queue.max_inflight", True), ("queue.max_inflight", 1.5), ("mqtt.allow_anonymous", 1),
    ("queue.type", "stack"), ("mqtt.max_qos", 5),
])
def test_check_rejects_wrong_typed_values(key, value):
    with pytest.raises(ValueError):
        SCHEMA[key].check(value)


# ---- file syntax ----

def test_file_comments_blank_lines_quotes_and_inline_comments(tmp_path):
    config = load_text(tmp_path, (
        "## a doc comment\n"
        "# a plain comment\n"
        "\n"
        "   queue.max_inflight=50\n"
        "node.name = \"my node\"\n"
        "storage.dir = '/var/lib/actormq # not a comment'\n"
        "queue.type = lifo   # a trailing comment\n"
        "plugins.order = \"\"\n"
        "listener.tcp.host = 127.0.0.1 # local only\n"
    ))
    assert config["queue.max_inflight"] == 50
    assert config["node.name"] == "my node"
    assert config["storage.dir"] == "/var/lib/actormq # not a comment"
    assert config["queue.type"] == "lifo"
    assert config["plugins.order"] == ""
    assert config["listener.tcp.host"] == "127.0.0.1"
    assert config.source("queue.max_inflight") == "file"
    assert config.source("queue.max_offline_messages") == "default"


def test_last_line_wins_for_a_repeated_key(tmp_path):
    assert load_text(tmp_path, "queue.max_inflight = 1\nqueue.max_inflight = 2\n")["queue.max_inflight"] == 2


def test_file_bad_value_names_file_line_and_key(tmp_path):
    error, path = config_error(tmp_path, "# comment\n\nqueue.max_inflight = lots\n")
    assert str(error) == f"{path}:3, key 'queue.max_inflight': expected an integer, got 'lots'"
    assert (error.line, error.key, error.source) == (3, "queue.max_inflight", str(path))


def test_file_out_of_range_names_line_and_key(tmp_path):
    error, path = config_error(tmp_path, "listener.tcp.port = 1883\nmqtt.receive_maximum = 70000\n")
    assert str(error) == f"{path}:2, key 'mqtt.receive_maximum': 70000 is out of range (1..65535)"


def test_file_unknown_key_names_line_and_suggests(tmp_path):
    error, path = config_error(tmp_path, "queue.max_infligt = 5\n")
    assert str(error) == (f"{path}:1, key 'queue.max_infligt': unknown key "
                          "(did you mean 'queue.max_inflight'?)")


def test_file_unknown_key_without_a_close_match(tmp_path):
    error, path = config_error(tmp_path, "\nzzz = 5\n")
    assert str(error) == f"{path}:2, key 'zzz': unknown key"


def test_file_line_without_equals(tmp_path):
    error, path = config_error(tmp_path, "queue.max_inflight = 5\nqueue.max_inflight 6\n")
    assert str(error) == f"{path}:2: expected 'dotted.key = value', got 'queue.max_inflight 6'"


def test_file_line_without_key(tmp_path):
    error, path = config_error(tmp_path, " = 6\n")
    assert str(error).startswith(f"{path}:1: expected 'dotted.key = value'")


def test_file_unterminated_quote(tmp_path):
    error, path = config_error(tmp_path, 'node.name = "abc\n')
    assert str(error) == f"{path}:1, key 'node.name': unterminated quote in '\"abc'"


def test_file_text_after_closing_quote(tmp_path):
    error, path = config_error(tmp_path, 'node.name = "abc" def\n')
    assert str(error) == f"{path}:1, key 'node.name': unexpected text after the closing quote: 'def'"


def test_missing_file(tmp_path):
    path = tmp_path / "nope.conf"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"{path}: cannot read config file: No such file or directory"


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path, env={})


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"node.name = caf\xe9\n")
    with pytest.raises(ConfigError, match=f"^{path}: cannot read config file: .*utf-8"):
        load_config(path, env={})


def test_max_map_size_below_map_size(tmp_path):
    error, _ = config_error(tmp_path, "storage.map_size = 1GB\nstorage.max_map_size = 512MB\n")
    assert str(error) == "key 'storage.max_map_size': must be at least storage.map_size (1GB)"


# ---- environment and precedence ----

def test_precedence_file_then_env_then_flags(tmp_path):
    config = load_text(
        tmp_path,
        "queue.max_inflight = 30\nqueue.max_online_messages = 31\nqueue.max_offline_messages = 32\n",
        env={"ACTORMQ__QUEUE__MAX_ONLINE_MESSAGES": "41", "ACTORMQ__QUEUE__MAX_OFFLINE_MESSAGES": "42"},
        overrides={"queue.max_offline_messages": "52"},
    )
    assert [config[f"queue.{name}"] for name in ("max_inflight", "max_online_messages",
                                                  "max_offline_messages")] == [30, 41, 52]
    assert [config.source(f"queue.{name}") for name in ("max_inflight", "max_online_messages",
                                                         "max_offline_messages")] == ["file", "env", "flag"]


def test_env_names_are_case_insensitive_and_others_ignored():
    config = load_config(env={"actormq__queue__max_inflight": "50", "ACTORMQ__SYS_INTERVAL": "1m",
                              "ACTORMQ_OTHER": "x", "PATH": "/bin"})
    assert config["queue.max_inflight"] == 50
    assert config["sys_interval"] == 60


def test_env_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("ACTORMQ__QUEUE__MAX_INFLIGHT", "77")
    assert load_config()["queue.max_inflight"] == 77


def test_env_unknown_key_names_the_variable():
    with pytest.raises(ConfigError) as caught:
        load_config(env={"ACTORMQ__XYZZY": "1"})
    assert str(caught.value) == "environment variable ACTORMQ__XYZZY, key 'xyzzy': unknown key"


def test_env_bad_value_names_the_variable():
    with pytest.raises(ConfigError) as caught:
        load_config(env={"ACTORMQ__QUEUE__MAX_INFLIGHT": "lots"})
    assert str(caught.value) == ("environment variable ACTORMQ__QUEUE__MAX_INFLIGHT, "
                                 "key 'queue.max_inflight': expected an integer, got 'lots'")


def test_override_errors_name_the_command_line():
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, overrides={"queue.max_inflight": "abc"})
    assert str(caught.value) == "command line, key 'queue.max_inflight': expected an integer, got 'abc'"


# ---- the Config value ----

def test_config_is_immutable_and_picklable():
    config = load_config(env={}, overrides={"node.workers": "3"})
    with pytest.raises(AttributeError):
        config._values = {}  # noqa: SLF001
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config and copy["node.workers"] == 3 and copy.source("node.workers") == "flag"
    assert hash(copy) == hash(config)


def test_replace_and_with_overrides_return_new_configs():
    config = default_config()
    replaced = config.replace(**{"queue.max_inflight": 50, "queue.type": "lifo"})
    overridden = config.with_overrides({"storage.map_size": "2MB"}, source="env")
    assert (replaced["queue.max_inflight"], replaced["queue.type"]) == (50, "lifo")
    assert replaced.source("queue.max_inflight") == "flag"
    assert (overridden["storage.map_size"], overridden.source("storage.map_size")) == (2 << 20, "env")
    assert config["queue.max_inflight"] == 100 and config["storage.map_size"] == 64 << 20


def test_replace_validates():
    with pytest.raises(ConfigError, match="key 'mqtt.max_qos': 3 is out of range"):
        default_config().replace(**{"mqtt.max_qos": 3})
    with pytest.raises(ConfigError, match="unknown key"):
        default_config().replace(**{"mqtt.max_qoss": 1})


def test_lookup_helpers():
    config = default_config()
    assert config.get("no.such.key", "fallback") == "fallback"
    assert config.get("queue.max_inflight") == 100
    assert "queue.type" in config and "no.such.key" not in config and len(config) == len(KEYS)
    with pytest.raises(KeyError, match="unknown config key"):
        config["no.such.key"]
    with pytest.raises(KeyError):
        config.source("no.such.key")
    snapshot = config.as_dict()
    snapshot["queue.max_inflight"] = 99
    assert config["queue.max_inflight"] == 100


# ---- the default file ----

def test_default_file_equals_the_schema_rendering():
    # Regenerate with: actormq config default > actormq/conf/actormq.conf
    assert DEFAULT_FILE.read_text(encoding="utf-8") == render_default_config()


def test_default_file_loads_to_the_defaults():
    config = load_config(DEFAULT_FILE, env={})
    assert config.as_dict() == default_config().as_dict()
    assert {config.source(key) for key in config} == {"file"}


def test_default_file_documents_every_key():
    text = render_default_config()
    for key in KEYS:
        assert f"## {key.doc}\n## type: {key.type_text()}\n{key.name} = " in text


def test_readme_key_table_matches_the_schema():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_.]+)` \| `([^`]*)` \| (.+) \|$", readme, flags=re.MULTILINE)
    assert len(rows) >= 10
    for name, default, doc in rows:
        key = SCHEMA[name]
        assert (default, doc) == (key.format(key.default), key.doc), name


def test_pattern_key_regex_takes_any_name_in_a_name_segment() -> None:
    from actormq.conf.schema import _pattern_regex
    regex = _pattern_regex("listener.ssl.<name>.certfile")
    assert regex.fullmatch("listener.ssl.default.certfile")
    assert regex.fullmatch("listener.ssl.edge-2.certfile")
    assert not regex.fullmatch("listener.ssl.a.b.certfile")
    assert not regex.fullmatch("listener.sslXdefault.certfile")
