"""`actormq webhooks ...`: VerneMQ's `vmq-admin webhooks` commands, through the node's API.

    actormq webhooks register hook=on_publish endpoint="http://127.0.0.1:8080/hook" \\
        [--base64payload=false] [--no_payload=true] [--response_timeout=5000]
    actormq webhooks deregister hook=on_publish endpoint="http://127.0.0.1:8080/hook"
    actormq webhooks show [--format json]
    actormq webhooks cache show [--format json]
    actormq webhooks cache clear

Tables are drawn as vmq-admin draws them. Runtime registrations are kept in
the data dir, so unlike VerneMQ they survive a restart.
"""

from __future__ import annotations

import json

import click

from actormq.mgmt.cli_support import api_command, format_option, parse_pairs, warn_failed

SHOW_COLUMNS = ("hook", "endpoint", "base64payload", "response_timeout")
CACHE_COLUMNS = ("stat", "endpoint", "hook", "value")


def clique_table(columns: tuple[str, ...], rows: list[dict]) -> str:
    """A table as vmq-admin (clique) prints it: +---+ borders, centred cells."""
    cells = [[_text(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    rule = "+" + "+".join("-" * width for width in widths) + "+\n"
    lines = [rule, _row(columns, widths), rule] + [_row(line, widths) for line in cells]
    return "".join(lines + [rule])


def _row(cells, widths) -> str:
    """Cells centred, the odd space on the right (as clique does)."""
    return "|" + "|".join(" " * ((w - len(c)) // 2) + c + " " * (w - len(c) - (w - len(c)) // 2)
                          for c, w in zip(cells, widths)) + "|\n"


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _print(rows: list[dict], columns: tuple[str, ...], output_format: str) -> None:
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        click.echo(clique_table(columns, rows), nl=False)


def _key_values(items: tuple[str, ...], names: tuple[str, ...]) -> dict[str, str]:
    """vmq-admin's `key=value` arguments, every one of `names` required."""
    values = parse_pairs(items, names)
    missing = [name for name in names if name not in values]
    if missing:
        raise click.UsageError(f"missing {', '.join(n + '=...' for n in missing)}")
    return values


@click.group("webhooks")
def webhooks() -> None:
    """VerneMQ-compatible webhooks: register, deregister, show, and the auth cache."""


@webhooks.command("register")
@click.argument("key_values", nargs=-1, metavar="hook=HOOK endpoint=URL")
@click.option("--base64payload", type=click.Choice(["true", "false"]), default="true", show_default=True,
              help="Payloads base64-encoded in the JSON body.")
@click.option("--no_payload", type=click.Choice(["true", "false"]), default="false", show_default=True,
              help="auth_on_publish(_m5) bodies without the payload.")
@click.option("--response_timeout", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Milliseconds to wait for the endpoint's answer.")
@api_command
def register(client, key_values, base64payload, no_payload, response_timeout) -> None:
    """Register an endpoint on a hook (kept in the data dir across restarts)."""
    values = _key_values(key_values, ("hook", "endpoint"))
    body = client.post("/api/v4/webhooks", dict(values, base64payload=base64payload == "true",
                                                no_payload=no_payload == "true",
                                                response_timeout=response_timeout))
    warn_failed(body)
    click.echo("Done")


@webhooks.command("deregister")
@click.argument("key_values", nargs=-1, metavar="hook=HOOK endpoint=URL")
@api_command
def deregister(client, key_values) -> None:
    """Deregister an endpoint registered at runtime."""
    body = client.delete("/api/v4/webhooks", _key_values(key_values, ("hook", "endpoint")))
    warn_failed(body)
    click.echo("Done")


@webhooks.command("show")
@api_command
@format_option
def show(client, output_format: str) -> None:
    """Show the registered webhooks (config and runtime)."""
    _print(client.get("/api/v4/webhooks")["data"], SHOW_COLUMNS, output_format)


@webhooks.group("cache")
def cache() -> None:
    """The auth cache of auth_on_register/publish/subscribe(_m5) answers."""


@cache.command("show")
@api_command
@format_option
def cache_show(client, output_format: str) -> None:
    """Hits, misses and entries per endpoint and hook, over all workers."""
    body = client.get("/api/v4/webhooks/cache")
    warn_failed(body)
    _print(body["data"], CACHE_COLUMNS, output_format)


@cache.command("clear")
@api_command
def cache_clear(client) -> None:
    """Empty the auth cache of every worker."""
    warn_failed(client.delete("/api/v4/webhooks/cache"))
    click.echo("Done")
