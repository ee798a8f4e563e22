"""Admin CLI commands about the running node: `actormq metrics show|reset`,
`actormq listener show`, `actormq node status`, `actormq config show
--running`, `actormq log level LEVEL` and `actormq trace client`. Each is a
client of the management API (`actormq.mgmt.cli_support`).
"""

from __future__ import annotations

import datetime
import json
import sys

import click

from actormq.mgmt.cli_support import (ApiClient, admin_errors, api_command, emit, format_option,
                                      parse_pairs, render_table, warn_failed)
from actormq.mgmt.client import connect


@click.group()
def metrics() -> None:
    """Counters and gauges of the running broker."""


@metrics.command("show")
@format_option
@api_command
def metrics_show(client: ApiClient, output_format: str) -> None:
    """Show every counter and gauge, summed over the workers (per-worker rows last)."""
    body = client.get("/api/v4/actormq/metrics")
    warn_failed(body)
    if output_format == "json":
        click.echo(json.dumps(body["data"], indent=2))
        return
    for name, value in body["data"].items():
        click.echo(f"{name} = {value}")


@metrics.command("reset")
@format_option
@api_command
def metrics_reset(client: ApiClient, output_format: str) -> None:
    """Zero the counters of every worker (gauges keep their values)."""
    body = client.delete("/api/v4/actormq/metrics")
    warn_failed(body)
    click.echo(json.dumps(body["data"]) if output_format == "json" else "Done")


@click.group()
def listener() -> None:
    """Listeners of the running broker."""


@listener.command("show")
@format_option
@api_command
def listener_show(client: ApiClient, output_format: str) -> None:
    """Show every listener: identifier, address, status, connections."""
    rows = [row | {"status": "running" if row["running"] else "stopped"}
            for node in client.get("/api/v4/listeners")["data"] for row in node["listeners"]]
    emit(rows, ("identifier", "protocol", "listen_on", "status", "current_conns"), output_format)


@click.group()
def node() -> None:
    """The running node."""


@node.command("status")
@format_option
@api_command
def node_status(client: ApiClient, output_format: str) -> None:
    """Show uptime, version, storage size and every worker (pid, CPU, RSS, connections)."""
    body = client.get("/api/v4/actormq/status")
    warn_failed(body)
    status = body["data"]
    if output_format == "json":
        click.echo(json.dumps(status, indent=2))
        return
    uptime = datetime.timedelta(seconds=status["uptime_seconds"])
    click.echo(f"node: {status['node']}\nversion: {status['version']}\nuptime: {uptime}\n"
               f"data dir: {status['data_dir']} ({status['storage_bytes']} bytes on disk)\n"
               f"connections: {status['connections']}\nsessions: {status['sessions']}")
    rows = [row | {"cpu_seconds": None if row["cpu_seconds"] is None else round(row["cpu_seconds"], 2),
                   "rss_mb": None if row["rss_bytes"] is None else round(row["rss_bytes"] / 2 ** 20, 1)}
            for row in status["workers"]]
    click.echo(render_table(("worker", "pid", "alive", "cpu_seconds", "rss_mb", "connections"), rows), nl=False)


def running_config_option(show: click.Command) -> click.Command:
    """`actormq config show` plus `--running`: the values in force in the running node
    (asked from its API); without it, the original command on the config files."""

    def callback(running: bool, output_format: str, data_dir: str | None, api: str | None,
                 user: str | None, secret: str | None, **original) -> None:
        if not running:
            show.callback(**original)
            return
        with admin_errors():
            client = connect(original.get("config_file"), data_dir, api, user, secret)
            rows = client.get("/api/v4/actormq/config")["data"]
        if output_format == "json":
            click.echo(json.dumps(rows, indent=2))
            return
        width = max(len(f"{row['key']} = {row['value']}") for row in rows)
        for row in rows:
            click.echo(f"{row['key'] + ' = ' + row['value']:<{width}}  # {row['source']}")

    extra = [
        click.Option(["--running"], is_flag=True, help="Show the values in force in the running broker."),
        click.Option(["--format", "output_format"], type=click.Choice(["table", "json"]), default="table",
                     show_default=True, help="Output format (with --running)."),
        click.Option(["--data-dir"], metavar="DIR", help="Data dir of the running broker (with --running)."),
        click.Option(["--api"], metavar="URL", help="Base URL of the management API (with --running)."),
        click.Option(["--user"], metavar="ID", help="Application id (with --api)."),
        click.Option(["--secret"], metavar="S", help="Application secret (with --api)."),
    ]
    return click.Command(show.name, callback=callback, params=show.params + extra,
                         help=(show.help or "") + " With --running: the values the running broker uses.",
                         short_help=show.short_help)


@click.group()
def log() -> None:
    """Logging of the running broker."""


@log.command("level")
@click.argument("level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
@format_option
@api_command
def log_level(client: ApiClient, level: str, output_format: str) -> None:
    """Set the lowest level logged by the node and every worker, at once."""
    body = client.put("/api/v4/actormq/log/level", {"level": level.lower()})
    warn_failed(body)
    click.echo(json.dumps(body["data"]) if output_format == "json" else "Done")


@click.group()
def trace() -> None:
    """Follow what happens to one client, live."""


@trace.command("client")
@click.argument("pairs", nargs=-1, required=True, metavar="client-id=ID")
@format_option
@api_command
def trace_client(client: ApiClient, pairs: tuple[str, ...], output_format: str) -> None:
    """Print every event of one client (packets in and out, deliveries, drops with the
    reason, hook calls) as it happens, until Ctrl-C; --format json prints one JSON
    object per line."""
    values = parse_pairs(pairs, ("client-id",))
    if not values.get("client-id"):
        raise click.UsageError("client-id=... is required")
    show = _json_line if output_format == "json" else _text_line
    try:
        client.stream("/api/v4/actormq/trace/client", {"clientid": values["client-id"]}, show)
    except KeyboardInterrupt:
        sys.exit(0)


def _json_line(event: dict) -> None:
    click.echo(json.dumps(event, ensure_ascii=False))


def _text_line(event: dict) -> None:
    when = datetime.datetime.fromtimestamp(event.get("time") or 0).isoformat(timespec="milliseconds")
    kind = event.get("event", "?")
    skip = {"time", "event", "node", "worker", "clientid", "type", "peer"}
    detail = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in event.items()
                      if k not in skip and v not in (None, {}, [], ""))
    where = f"worker {event['worker']}" if "worker" in event else event.get("node", "")
    click.echo(f"{when} {where} {event.get('clientid', '')} {kind} {event.get('type', '')} {detail}".rstrip())


COMMANDS = (metrics, listener, node, log, trace)
