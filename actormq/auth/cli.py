"""`actormq passwd` (password file edits) and `actormq acl` commands.

`actormq passwd FILE USER` prompts for the password; `-b FILE USER PASSWORD`
takes it on the command line (scripts); `-c` creates (overwrites) the file;
`-D` deletes the user. Hashes are PBKDF2-SHA512 `$7$`, which Mosquitto reads.

`actormq acl reload` (as `emqx_ctl acl reload`) makes the running broker
re-read its ACL and password files and empty every ACL cache; `actormq acl
cache CLIENTID [--clear]` shows or empties one client's ACL cache.
"""

from __future__ import annotations

import os
import sys
import tempfile
from urllib.parse import quote

import click

from actormq.auth.hashes import make_pbkdf2_hash
from actormq.auth.passwd_file import delete_user_lines, set_user_line, user_line
from actormq.auth.scram import ScramCredentials
from actormq.mgmt.cli_support import api_command, emit, format_option, warn_failed

EXIT_ERROR = 2


def _fail(message: str) -> None:
    click.echo(f"actormq passwd: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _read_lines(path: str, create: bool) -> list[str]:
    if create:
        return []
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        _fail(f"{path} does not exist (use -c to create it)")
    except OSError as problem:
        _fail(f"cannot read {path}: {problem.strerror}")
    return []


def _write_lines(path: str, lines: list[str]) -> None:
    """Replace the file in one rename, so a broker re-reading it never sees half of it."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    try:
        fd, temporary = tempfile.mkstemp(prefix=".passwd.", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as problem:
        _fail(f"cannot write {path}: {problem.strerror}")


def _prompt_password() -> str:
    password = click.prompt("Password", hide_input=True, err=True)
    again = click.prompt("Reenter password", hide_input=True, err=True)
    if password != again:
        _fail("passwords do not match")
    return password


def _scram_credentials(password: str) -> ScramCredentials | None:
    try:
        return ScramCredentials.from_password(password)
    except ImportError:
        click.echo("actormq passwd: warning: no SCRAM-SHA-256 credentials written (needs scramp: "
                   "pip install 'actormq[auth]')", err=True)
        return None


@click.command("passwd")
@click.option("-b", "batch", is_flag=True, help="Batch mode: the password is the third argument.")
@click.option("-c", "create", is_flag=True, help="Create a new password file (overwrites an existing one).")
@click.option("-D", "delete", is_flag=True, help="Delete the user instead of setting a password.")
@click.option("-s", "--superuser", is_flag=True, help="Mark the user as a superuser (skips the ACL).")
@click.option("--no-scram", is_flag=True, help="Do not store SCRAM-SHA-256 credentials (MQTT 5 enhanced auth).")
@click.argument("path", metavar="FILE")
@click.argument("user")
@click.argument("password", required=False)
def passwd(batch: bool, create: bool, delete: bool, superuser: bool, no_scram: bool, path: str, user: str,
           password: str | None) -> None:
    """Add, change (-b for scripts) or delete (-D) a user of a password file.

    Writes PBKDF2-SHA512 ($7$) hashes, the format of mosquitto_passwd 2.x, and
    (unless --no-scram) SCRAM-SHA-256 credentials in the flags field.
    """
    if ":" in user or not user:
        _fail("a user name must be non-empty and contain no ':'")
    if delete and create:
        _fail("-c and -D cannot be used together")
    if batch != (password is not None) and not delete:
        _fail("-b takes FILE USER PASSWORD; without -b the password is prompted for")
    lines = _read_lines(path, create)
    if delete:
        lines, found = delete_user_lines(lines, user)
        if not found:
            _fail(f"user {user!r} not found in {path}")
    else:
        secret = password if batch else _prompt_password()
        scram = None if no_scram else _scram_credentials(secret)
        lines = set_user_line(lines, user, user_line(user, make_pbkdf2_hash(secret), superuser, scram))
    _write_lines(path, lines)


@click.group("acl")
def acl() -> None:
    """The running broker's ACL: reload the files, show or empty a client's ACL cache."""


@acl.command("reload")
@api_command
def acl_reload(client) -> None:
    """Re-read the ACL and password files on every worker and empty every ACL cache."""
    body = client.command("acl.reload")
    warn_failed(body)
    click.echo(f"reloaded on {len(body.get('data') or [])} worker(s)")


@acl.command("cache")
@api_command
@click.option("--clear", is_flag=True, help="Empty the client's ACL cache instead of showing it.")
@format_option
@click.argument("client_id", metavar="CLIENTID")
def acl_cache(client, clear: bool, output_format: str, client_id: str) -> None:
    """Show (or --clear) the ACL cache of a connected client."""
    path = f"/api/v4/clients/{quote(client_id, safe='')}/acl_cache"
    if clear:
        client.delete(path)
        click.echo(f"ACL cache of {client_id} emptied")
        return
    emit(client.get(path).get("data") or [], ("access", "topic", "result", "updated_time"), output_format)
