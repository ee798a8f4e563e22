"""Admin CLI commands in vmq-admin's shape, clients of the management API:
`actormq api-key show`, `actormq session show|disconnect|unsubscribe`,
`actormq retain show|delete|delete-expired`. The node, metrics, listener,
config, log and trace commands are in `actormq.mgmt.cli_node`.
"""

from __future__ import annotations

import json
import re

import click

from actormq.conf.load import load_config
from actormq.mgmt.cli_support import (ApiClient, admin_errors, api_command, emit, format_option,
                                      parse_pairs, warn_failed)
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


# -- session ---------------------------------------------------------------------------

SESSION_FIELDS = ("client_id", "is_online", "mountpoint", "peer_host", "peer_port", "user", "protocol",
                  "queue_size", "offline_messages", "online_messages", "waiting_acks", "clean_session",
                  "session_started_at", "statename", "expiry_interval", "topic", "qos", "node", "worker")
DEFAULT_SESSION_FIELDS = ("client_id", "is_online", "mountpoint", "peer_host", "peer_port", "user")


@click.group()
def session() -> None:
    """Sessions of the running broker (VerneMQ's vmq-admin session)."""


def _session_rows(rows: list[dict], fields: tuple[str, ...]) -> list[dict]:
    """One row per session, or per subscription when topic or qos is asked for."""
    if "topic" not in fields and "qos" not in fields:
        return rows
    expanded = []
    for row in rows:
        for subscription in row["subscriptions"] or [{"topic": None, "qos": None}]:
            expanded.append(row | subscription)
    return expanded


@session.command("show", help="Show sessions with VerneMQ's columns. FIELDS picks the columns "
                 "(default: client_id is_online mountpoint peer_host peer_port user); topic and qos "
                 "give one row per subscription. Fields: " + " ".join(SESSION_FIELDS))
@click.option("--client_id", "--client-id", "client_id", metavar="ID|~REGEX",
              help="Only this client id, or (with a leading ~) the ids matching a regular expression.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many rows.")
@click.argument("fields", nargs=-1)
@format_option
@api_command
def session_show(client: ApiClient, client_id: str | None, limit: int | None, fields: tuple[str, ...],
                 output_format: str) -> None:
    unknown = [f for f in fields if f.lstrip("-") not in SESSION_FIELDS]
    if unknown:
        raise click.UsageError(f"unknown field {unknown[0]!r}; fields are: {' '.join(SESSION_FIELDS)}")
    fields = tuple(f.lstrip("-") for f in fields) or DEFAULT_SESSION_FIELDS
    params = {}
    if client_id and client_id.startswith("~"):
        try:
            re.compile(client_id[1:])
        except re.error as exc:
            raise click.UsageError(f"bad regular expression {client_id[1:]!r}: {exc}") from None
        params["client_id_regex"] = client_id[1:]
    elif client_id:
        params["clientid"] = client_id
    sessions, failed = client.rows("/api/v4/actormq/sessions", params, limit)
    warn_failed({"failed": failed})
    rows = _session_rows(sessions, fields)
    emit(rows[:limit] if limit else rows, fields, output_format)


@session.command("disconnect")
@click.argument("pairs", nargs=-1, required=True, metavar="client-id=ID")
@click.option("--cleanup", is_flag=True, help="Also discard the session (its queue and subscriptions).")
@format_option
@api_command
def session_disconnect(client: ApiClient, pairs: tuple[str, ...], cleanup: bool, output_format: str) -> None:
    """Disconnect a client (5.0: DISCONNECT 0x98 administrative action)."""
    client_id = _required(parse_pairs(pairs, ("client-id",)), "client-id")
    body = client.post(f"/api/v4/actormq/sessions/{client_id}/disconnect", {"cleanup": cleanup})
    warn_failed(body)
    if not body["data"]:
        raise click.ClickException(f"no session {client_id!r}")
    _done(output_format, {"client_id": client_id, "disconnected": True, "cleanup": cleanup})


@session.command("unsubscribe")
@click.argument("pairs", nargs=-1, required=True, metavar="client-id=ID topic=FILTER")
@format_option
@api_command
def session_unsubscribe(client: ApiClient, pairs: tuple[str, ...], output_format: str) -> None:
    """Remove one subscription of a session."""
    values = parse_pairs(pairs, ("client-id", "topic"))
    client_id, topic = _required(values, "client-id"), _required(values, "topic")
    client.post("/api/v4/mqtt/unsubscribe", {"clientid": client_id, "topic": topic})
    _done(output_format, {"client_id": client_id, "topic": topic, "unsubscribed": True})


def _required(values: dict, name: str) -> str:
    if not values.get(name):
        raise click.UsageError(f"{name}=... is required")
    return values[name]


def _done(output_format: str, result: dict) -> None:
    click.echo(json.dumps(result) if output_format == "json" else "Done")


# -- retain --------------------------------------------------------------------------------

@click.group()
def retain() -> None:
    """Retained messages of the running broker."""


@retain.command("show")
@click.option("--topic", metavar="FILTER", help="Only topics matching this filter (wildcards allowed).")
@click.option("--payload", is_flag=True, help="Also show the payloads.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many messages.")
@format_option
@api_command
def retain_show(client: ApiClient, topic: str | None, payload: bool, limit: int | None,
                output_format: str) -> None:
    """Show the retained messages: topic, QoS, size, payload."""
    rows, _failed = client.rows("/api/v4/retained", {"topic": topic, "payload": payload}, limit)
    columns = ("topic", "qos", "size") + (("payload",) if payload else ())
    emit(rows, columns, output_format)


@retain.command("delete")
@click.option("--topic", metavar="TOPIC", required=True, help="The topic whose retained message goes.")
@format_option
@api_command
def retain_delete(client: ApiClient, topic: str, output_format: str) -> None:
    """Delete the retained message of one topic."""
    from urllib.parse import quote
    client.delete(f"/api/v4/retained/{quote(topic, safe='')}")
    _done(output_format, {"topic": topic, "deleted": True})


@retain.command("delete-expired")
@format_option
@api_command
def retain_delete_expired(client: ApiClient, output_format: str) -> None:
    """Delete every retained message whose expiry has passed."""
    deleted = client.delete("/api/v4/retained", {"expired": True})["data"]["deleted"]
    click.echo(json.dumps({"deleted": deleted}) if output_format == "json" else f"{deleted} deleted")


COMMANDS = (api_key, session, retain)
