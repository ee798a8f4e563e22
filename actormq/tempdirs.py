"""The broker's temporary directories (the node's run dir of bus and control
sockets, a worker's notification sender socket): named after the process that
made them, so that a broker starting later removes those whose process died
without removing them. A kill -9 of the whole broker leaves no process to do it."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile

log = logging.getLogger(__name__)

_NAME = re.compile(r"actormq-(?:run|notify)-(\d+)-")


def make(kind: str) -> str:
    """A new private directory `actormq-<kind>-<pid>-<random>` in the temp dir."""
    return tempfile.mkdtemp(prefix=f"actormq-{kind}-{os.getpid()}-")


def sweep(parent: str | None = None) -> list[str]:
    """Remove the directories `make` made for processes that are gone (ours only:
    same owner); returns their paths. Never raises."""
    parent = parent or tempfile.gettempdir()
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    removed = []
    for name in names:
        match = _NAME.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        path = os.path.join(parent, name)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed %d temporary director%s left by brokers that were killed",
                 len(removed), "y" if len(removed) == 1 else "ies")
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
