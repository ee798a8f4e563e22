"""The `actormq api-key` command: the management API's application id and secret."""

from __future__ import annotations

import json

import click

from actormq.conf.load import load_config
from actormq.mgmt.cli_support import admin_errors, format_option
from actormq.mgmt.credentials import application_secret


@click.group("api-key")
def api_key() -> None:
    """The application id and secret of the management HTTP API."""


@api_key.command("show")
@click.option("-c", "--config", "config_file", metavar="FILE", help="Config file of the broker.")
@click.option("--data-dir", metavar="DIR", help="Data dir of the broker (default: storage.dir).")
@format_option
def api_key_show(config_file: str | None, data_dir: str | None, output_format: str) -> None:
    """Print the application id and secret (the secret is generated into the data dir if
    management.default_application.secret is not set and none was generated yet)."""
    with admin_errors():
        overrides = {"storage.dir": data_dir} if data_dir else {}
        config = load_config(config_file, overrides=overrides)
        app_id = config["management.default_application.id"]
        secret = application_secret(config)
    if output_format == "json":
        click.echo(json.dumps({"id": app_id, "secret": secret}))
    else:
        click.echo(f"id: {app_id}\nsecret: {secret}")
