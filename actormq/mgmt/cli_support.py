"""What every admin CLI command shares: the options that find the running
node, the error handling (exit 1 with one line), and table/JSON output.

An area's command (in its own `cli.py`) is

    @some_group.command("show")
    @api_command
    @format_option
    def show(client: ApiClient, output_format: str) -> None:
        \"\"\"Show the webhooks of every worker.\"\"\"
        rows = client.command("webhooks.list")["data"]
        emit(rows, ("node", "worker", "hook", "endpoint"), output_format)

`api_command` adds `-c/--config`, `--data-dir`, `--api`, `--user`, `--secret`
and hands the command a connected `ApiClient` as its first argument. Exit
status: 0 done, 1 error (one line on stderr: no running broker, an error
answer, a worker that did not answer), 2 usage (click).
"""

from __future__ import annotations

import functools
import json
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import click

from actormq.errors import ActormqError
from actormq.mgmt.client import ApiClient, connect

EXIT_ERROR = 1

format_option = click.option("--format", "output_format", type=click.Choice(["table", "json"]),
                             default="table", show_default=True, help="Output format.")


@contextmanager
def admin_errors() -> Iterator[None]:
    """Any ActormqError (no broker, an error answer) ends the command with exit 1."""
    try:
        yield
    except ActormqError as err:
        click.echo(f"actormq: error: {err}", err=True)
        sys.exit(EXIT_ERROR)


def api_command(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options that find the node; call the command with a connected ApiClient."""

    @functools.wraps(command)
    def run(*args: Any, config_file: str | None, data_dir: str | None, api: str | None,
            user: str | None, secret: str | None, **kwargs: Any) -> Any:
        with admin_errors():
            client = connect(config_file, data_dir, api, user, secret)
            return command(client, *args, **kwargs)

    for option in reversed((
        click.option("-c", "--config", "config_file", metavar="FILE",
                     help="Config file of the broker (to find its data dir)."),
        click.option("--data-dir", metavar="DIR", help="Data dir of the broker (default: storage.dir)."),
        click.option("--api", metavar="URL", help="Base URL of the management API (instead of the data dir's state file)."),
        click.option("--user", metavar="ID", help="Application id (with --api)."),
        click.option("--secret", metavar="S", help="Application secret (with --api)."),
    )):
        run = option(run)
    return run


def warn_failed(body: dict) -> None:
    """Name on stderr the workers that did not answer (a partial answer)."""
    for failure in body.get("failed") or ():
        click.echo(f"actormq: warning: {failure['node']} worker {failure['worker']}: {failure['reason']}",
                   err=True)


def emit(rows: list[dict] | dict, columns: Iterable[str], output_format: str) -> None:
    """Print rows as an aligned table (the given columns) or as JSON (every field)."""
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return
    if isinstance(rows, dict):
        rows = [{"key": key, "value": value} for key, value in rows.items()]
        columns = ("key", "value")
    click.echo(render_table(tuple(columns), rows), nl=False)


def render_table(columns: tuple[str, ...], rows: list[dict]) -> str:
    """A table in vmq-admin's shape: a +---+ frame, centred cells."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) + 2 for i, column in enumerate(columns)]
    rule = "+" + "+".join("-" * width for width in widths) + "+\n"

    def line(values) -> str:
        return "|" + "|".join(value.center(width) for value, width in zip(values, widths)) + "|\n"

    return rule + line(columns) + rule + "".join(line(values) for values in cells) + rule


def parse_pairs(values: tuple[str, ...], allowed: tuple[str, ...]) -> dict[str, str]:
    """vmq-admin's `key=value` arguments (e.g. client-id=c1 topic=a/b)."""
    pairs = {}
    for item in values:
        key, equals, value = item.partition("=")
        if not equals or key not in allowed:
            raise click.UsageError(f"expected {' '.join(f'{name}=...' for name in allowed)}, got {item!r}")
        pairs[key] = value
    return pairs


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


__all__ = ["api_command", "admin_errors", "emit", "format_option", "parse_pairs", "render_table",
           "warn_failed", "ApiClient"]
