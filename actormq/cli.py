"""The `actormq` command line: click commands only.

`run` loads the config and hands it to `actormq.node.run_node`; `config` shows
and checks configs; `queues dump` and `retained dump` print what
`actormq.storage.dump` reads from the LMDB files; `bench` comes from
`actormq.bench.cli`. Every ActormqError ends the command with
`actormq: error: <message>` on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import datetime
import json
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import click

from actormq import __version__
from actormq.conf.load import Config, load_config
from actormq.conf.schema import SCHEMA, lookup, render_default_config
from actormq.errors import ActormqError
from actormq.hooks.loader import check_plugins

PROGRESS_THRESHOLD = 10_000
EXIT_USAGE = 2

_RUN_HELP = """Run the broker (listens on 0.0.0.0:1883, data in ./data, by default).

Flags override the environment (ACTORMQ__DOTTED__KEY variables), which
overrides the config file; the dedicated flags override --set.

Choosing -w/--workers: the default (0) is one worker per CPU core. Each
worker is one OS process with its own event loop, its own MQTT listeners
(bound with SO_REUSEPORT, so the kernel spreads new connections over the
workers) and its own actors; each costs about 35 MB RSS at idle (21 MB of it
not shared with the other processes).
Messages between clients on different workers take one hop over ZeroMQ;
-w 1 avoids that hop entirely and gives the lowest latency, while more
workers give more throughput with many clients.

At -w 1 the worker runs in the node's own process: one process of about
37 MB RSS idle instead of two of 67, but a crash or kill -9 ends the broker
(the service manager restarts it, with its persisted sessions).
--supervised (node.supervised) keeps the worker in a process of its own that
the node restarts when it dies; -w 2 and more always work that way.
"""


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn an ActormqError into a one-line message on stderr and exit status 2."""
    try:
        yield
    except ActormqError as err:
        click.echo(f"actormq: error: {err}", err=True)
        sys.exit(EXIT_USAGE)


def _parse_settings(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for item in values:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}")
        settings[key.strip()] = value
    return settings


def _config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The -c/--config and --set options every config-reading command takes."""
    command = click.option(
        "--set", "settings", multiple=True, metavar="KEY=VALUE", callback=_parse_settings,
        help="Set any config key, e.g. --set queue.max_inflight=50 (repeatable).")(command)
    return click.option("-c", "--config", "config_file", metavar="FILE",
                        help="Config file (actormq.conf format).")(command)


class CommandGroup(click.Group):
    """A click group whose heavy commands are imported when used (`add_lazy_command`),
    so `actormq run`, the broker's own process, does not load them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, Callable[[], click.Command | None]] = {}

    def add_lazy_command(self, name: str, load: Callable[[], click.Command | None]) -> None:
        self.lazy[name] = load

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        load = self.lazy.pop(name, None)
        if load is not None:
            command = load()
            if command is not None:
                self.add_command(command, name)
        return super().get_command(ctx, name)


@click.group(cls=CommandGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="actormq")
def main() -> None:
    """actormq: an MQTT 3.1.1 / 5.0 broker built from actors on multiprocessing workers."""


@main.command(help=_RUN_HELP, short_help="Run the broker.")
@click.option("-w", "--workers", type=click.IntRange(min=0), help="Worker processes (0 = one per core).")
@click.option("--supervised", is_flag=True, default=None,
              help="At -w 1, a worker process of its own, restarted when it dies (node.supervised).")
@_config_options
@click.option("--host", help="Address to listen on (listener.tcp.host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on; 0 picks a free one.")
@click.option("--data-dir", metavar="DIR", help="Directory of the LMDB files (storage.dir).")
@click.option("--log-level", type=click.Choice(SCHEMA["log.level"].choices, case_sensitive=False),
              help="Lowest level logged to stderr (log.level).")
def run(workers: int | None, supervised: bool | None, config_file: str | None, settings: dict[str, str],
        host: str | None, port: int | None, data_dir: str | None, log_level: str | None) -> None:
    flags = {"node.workers": workers, "node.supervised": "on" if supervised else None,
             "listener.tcp.host": host, "listener.tcp.port": port,
             "storage.dir": data_dir, "log.level": log_level}
    overrides = settings | {key: str(value) for key, value in flags.items() if value is not None}
    with _user_errors():
        config = _checked_config(config_file, overrides)
        from actormq.node import run_node
        code = run_node(config, lambda: _checked_config(config_file, overrides))
    sys.exit(code)


def _checked_config(config_file: str | None, overrides: dict[str, str]):
    """The config with its plugins and their settings checked (at the start and on SIGHUP)."""
    config = load_config(config_file, overrides=overrides)
    check_plugins(config, config_file)
    return config


@main.group()
def config() -> None:
    """Show and check configurations."""


@config.command("show")
@_config_options
def config_show(config_file: str | None, settings: dict[str, str]) -> None:
    """Print the effective config: every key, its value and where the value came from."""
    with _user_errors():
        effective = load_config(config_file, overrides=settings)
    click.echo(render_effective_config(effective), nl=False)


@config.command("check")
@click.option("-c", "--config", "config_file", metavar="FILE", required=True, help="Config file to check.")
def config_check(config_file: str) -> None:
    """Check a config file (and the ACTORMQ__ environment); exit 0 if valid, 2 if not."""
    with _user_errors():
        check_plugins(load_config(config_file), config_file)
    click.echo(f"{config_file}: ok")


@config.command("default")
def config_default() -> None:
    """Print the default actormq.conf, every key with its doc line and default."""
    click.echo(render_default_config(), nl=False)


def render_effective_config(effective: Config) -> str:
    """`key = value  # source` lines, valid as a config file."""
    settings = [f"{key} = {lookup(key).format(effective[key])}" for key in effective]
    width = max(map(len, settings))
    return "".join(f"{line:<{width}}  # {effective.source(key)}\n" for line, key in zip(settings, effective))


_format_option = click.option("--format", "output_format", type=click.Choice(["table", "json"]),
                              default="table", show_default=True, help="Output format.")
_data_dir_option = click.option("--data-dir", metavar="DIR", help="Data directory (default: storage.dir).")
_file_option = click.option("-c", "--config", "config_file", metavar="FILE",
                            help="Config file to take storage.dir from.")


@main.group()
def queues() -> None:
    """Inspect the offline queues.

    The LMDB files are read directly, so this works beside a running broker.
    """


@queues.command("dump")
@click.option("--client", "client_id", metavar="ID", help="Only the queue of this client id.")
@click.option("--messages", is_flag=True, help="Also list the queued messages.")
@_format_option
@_data_dir_option
@_file_option
def queues_dump(client_id: str | None, messages: bool, output_format: str, data_dir: str | None,
                config_file: str | None) -> None:
    """Print each queue: client id, state, length, oldest and newest message."""
    with _user_errors():
        from actormq.storage.dump import iter_queues
        directory = _storage_dir(config_file, data_dir)
        with _Progress() as progress:
            rows = list(iter_queues(directory, client_id=client_id, messages=messages, progress=progress))
    click.echo(_render_json(rows) if output_format == "json" else _render_queues(rows), nl=False)


@main.group()
def retained() -> None:
    """Inspect the retained messages.

    The LMDB files are read directly, so this works beside a running broker.
    """


@retained.command("dump")
@_format_option
@_data_dir_option
@_file_option
def retained_dump(output_format: str, data_dir: str | None, config_file: str | None) -> None:
    """Print each retained message: topic, QoS, size, time and the start of its payload."""
    with _user_errors():
        from actormq.storage.dump import iter_retained
        directory = _storage_dir(config_file, data_dir)
        with _Progress() as progress:
            rows = list(iter_retained(directory, progress=progress))
    click.echo(_render_json(rows) if output_format == "json" else _render_table(_MESSAGE_COLUMNS, rows),
               nl=False)


def _storage_dir(config_file: str | None, data_dir: str | None) -> str:
    overrides = {"storage.dir": data_dir} if data_dir else {}
    return load_config(config_file, overrides=overrides)["storage.dir"]


class _Progress:
    """The `progress(done, total)` callback of the dump readers: a bar on stderr past 10,000 items."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if total <= PROGRESS_THRESHOLD:
                return
            self._bar = click.progressbar(length=total, label="reading", file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._bar.pos)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)


_QUEUE_COLUMNS = ("client_id", "state", "length", "oldest", "newest")
_MESSAGE_COLUMNS = ("topic", "qos", "size", "timestamp", "payload_preview")
_TIME_FIELDS = frozenset({"oldest", "newest", "timestamp"})


def _render_queues(rows: list[dict[str, Any]]) -> str:
    parts = [_render_table(_QUEUE_COLUMNS, rows)]
    for row in rows:
        if row.get("messages"):
            parts.append(f"\nmessages of {_cell('client_id', row['client_id'])}:\n")
            parts.append(_render_table(_MESSAGE_COLUMNS, row["messages"], indent="  "))
    return "".join(parts)


def _render_table(columns: tuple[str, ...], rows: list[dict[str, Any]], indent: str = "") -> str:
    """Aligned columns under an upper-case header row."""
    cells = [[column.upper() for column in columns]]
    cells += [[_cell(column, row.get(column)) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)
    return "".join(f"{indent}{line}\n" for line in lines)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column in _TIME_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value).isoformat(timespec="milliseconds")
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _render_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def _json_default(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


def _bench_unavailable(module: str | None) -> click.Command:
    """Stands in for `actormq bench` when a module it needs (an optional extra) is missing."""

    @click.command("bench", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def bench() -> None:
        """Benchmarks (needs the bench extras: pip install 'actormq[bench]')."""
        click.echo(f"actormq: error: actormq bench needs the module {module!r}; "
                   "install it with: pip install 'actormq[bench]'", err=True)
        sys.exit(EXIT_USAGE)

    return bench


def _bench_command() -> click.Command | None:
    try:
        from actormq.bench.cli import bench
    except ModuleNotFoundError as missing:
        if missing.name in ("actormq.bench", "actormq.bench.cli"):
            return None
        return _bench_unavailable(missing.name)
    return bench


main.add_lazy_command("bench", _bench_command)

from actormq.mgmt import cli as _mgmt_cli, cli_node as _mgmt_cli_node  # noqa: E402

for _command in _mgmt_cli.COMMANDS + _mgmt_cli_node.COMMANDS:
    main.add_command(_command)
config.add_command(_mgmt_cli_node.running_config_option(config.commands["show"]))

from actormq.hooks.cli import plugin as _plugin_cli  # noqa: E402

main.add_command(_plugin_cli)

from actormq.auth.cli import acl, passwd  # noqa: E402  (feature commands register after the core ones)

main.add_command(passwd)
main.add_command(acl)

from actormq.webhooks.cli import webhooks  # noqa: E402

main.add_command(webhooks)
