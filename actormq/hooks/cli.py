"""``actormq plugin``: write a new plugin package, and show, enable, disable or
reload the plugins of a running broker (through the management API and the
control channel: `actormq.hooks.admin` answers in every worker)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from actormq.hooks.chains import SAMPLE_EVERY
from actormq.hooks.template import hook_points, write_plugin
from actormq.mgmt.cli_support import ApiClient, api_command, emit, format_option, warn_failed

STAT_COLUMNS = ("calls", "failures", "timeouts", "dropped", "skipped", "mean_ms", "p99_ms")
SAMPLING_NOTE = (f"mean_ms / p99_ms: over the last 1,024 sampled calls (one run of each hook chain "
                 f"in {SAMPLE_EVERY} is timed); a PUBLISH an ACL cache already allows is not a call")
SHOW_COLUMNS = ("worker", "order", "name", "enabled", "hooks", *STAT_COLUMNS)
BY_HOOK_COLUMNS = ("worker", "hook", "name", *STAT_COLUMNS)


@click.group()
def plugin() -> None:
    """Python plugins: write one, or manage those of the running broker."""


@plugin.command("new")
@click.argument("name")
@click.option("--hooks", "hook_names", required=True, metavar="NAMES",
              help="Comma-separated hooks, in any vocabulary: on_publish, message.publish, "
                   "OnMsgArrived, auth_on_register, client.authenticate ...")
@click.option("--config", "with_config", is_flag=True, help="Add a config schema (plugin.NAME.* keys).")
@click.option("-o", "--output", "directory", default=".", show_default=True, metavar="DIR",
              help="Directory to write the package into.")
def plugin_new(name: str, hook_names: str, with_config: bool, directory: str) -> None:
    """Write an installable plugin package NAME with the chosen hooks stubbed, a README
    and a test that starts a real broker with it."""
    try:
        points = hook_points([part.strip() for part in hook_names.split(",") if part.strip()])
        root = write_plugin(name, points, with_config, Path(directory))
    except (KeyError, ValueError, FileExistsError) as exc:
        click.echo(f"actormq: error: {exc.args[0] if isinstance(exc, KeyError) else exc}", err=True)
        sys.exit(2)
    click.echo(f"wrote {root}/ ({name}.py with {', '.join(p.method for p in points)}, "
               f"test_{name}.py, pyproject.toml, README.md)")


@plugin.command("show")
@click.option("--by-hook", is_flag=True, help="One row per worker, hook point and plugin.")
@api_command
@format_option
def plugin_show(client: ApiClient, output_format: str, by_hook: bool) -> None:
    """List the loaded plugins of every worker in chain order, with their hooks,
    calls, failures and mean / p99 latency (with --by-hook: at each hook point).
    Latency is sampled: one run of each hook chain in 64 is timed."""
    body = client.command("plugins.show")
    warn_failed(body)
    rows = body["data"]
    if by_hook:
        rows = [{"worker": row["worker"], "hook": point, "name": row["name"], **stats}
                for row in rows for point, stats in row["points"].items()]
        emit(rows, BY_HOOK_COLUMNS, output_format)
    else:
        if output_format == "table":
            rows = [{**row, "hooks": ",".join(row["hooks"])} for row in rows]
        emit(rows, SHOW_COLUMNS, output_format)
    if output_format == "table":
        click.echo(SAMPLING_NOTE)


def _change(name: str, command: str, done: str):
    @plugin.command(name)
    @click.argument("plugin_name", metavar="NAME")
    @api_command
    def change(client: ApiClient, plugin_name: str) -> None:
        body = client.command(command, {"name": plugin_name})
        warn_failed(body)
        click.echo(f"plugin {plugin_name} {done} on {len(body['data'])} worker(s)")
    change.__doc__ = f"{done.capitalize()} plugin NAME in every worker of the running broker."
    return change


plugin_enable = _change("enable", "plugins.enable", "enabled")
plugin_disable = _change("disable", "plugins.disable", "disabled")
plugin_reload = _change("reload", "plugins.reload", "reloaded (module imported again, clients kept)")
