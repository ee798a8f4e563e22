"""The management API's secret and the running node's state file, both in
the data dir and both readable by the broker's user only (mode 0600).

- `api_secret`: the application secret generated at first start when
  `management.default_application.secret` is empty (never a fixed default).
- `api.json`: written by a running node, removed when it stops: the API's
  base URL, application id and secret, and the node's pid. The CLI finds the
  running broker of a data dir through it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from actormq.errors import ActormqError

SECRET_FILE = "api_secret"
STATE_FILE = "api.json"


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, replacing any older one atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def application_secret(config) -> str:
    """The configured secret, else the one generated into the data dir (made on first use)."""
    configured = config["management.default_application.secret"]
    if configured:
        return configured
    path = Path(config["storage.dir"]) / SECRET_FILE
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    except OSError as exc:
        raise ActormqError(f"cannot read the API secret {path}: {exc.strerror or exc}") from exc
    if not secret:
        secret = secrets.token_urlsafe(24)
        try:
            write_private(path, secret + "\n")
        except OSError as exc:
            raise ActormqError(f"cannot write the API secret {path}: {exc.strerror or exc}") from exc
    return secret


def write_state(data_dir: str, url: str, app_id: str, secret: str) -> Path:
    path = Path(data_dir) / STATE_FILE
    state = {"url": url, "user": app_id, "secret": secret, "pid": os.getpid()}
    try:
        write_private(path, json.dumps(state) + "\n")
    except OSError as exc:
        raise ActormqError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def remove_state(data_dir: str) -> None:
    path = Path(data_dir) / STATE_FILE
    try:
        state = json.loads(path.read_text())
        if state.get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def read_state(data_dir: str) -> dict | None:
    """The state of the node running on this data dir, or None when none runs."""
    path = Path(data_dir) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except PermissionError:
        raise ActormqError(f"cannot read {path}: it is readable by the broker's user only") from None
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _alive(state.get("pid")):
        return None
    return state


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
