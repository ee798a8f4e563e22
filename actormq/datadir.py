"""The data dir lock: one running broker per `storage.dir`.

The node takes an exclusive `flock` on `<data dir>/actormq.lock` before it
opens the stores and holds it until it exits; the kernel releases it on every
exit, kill -9 included, so a stale file never blocks a start. The file holds
the pid of the holder, for the message a second broker stops with.
"""

from __future__ import annotations

import fcntl
import os

from actormq.errors import ActormqError

LOCK_FILE = "actormq.lock"


class DataDirLock:
    """An exclusive hold on a data dir; `release` (or process exit) lets it go."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.abspath(data_dir)
        try:
            os.makedirs(self.path, exist_ok=True)
            fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                         0o644)
        except OSError as exc:
            reason = "not a directory" if os.path.exists(self.path) and not os.path.isdir(self.path) \
                else exc.strerror or exc
            raise ActormqError(f"cannot use data dir {self.path}: {reason}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise ActormqError(f"data dir {self.path} is in use by pid {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text or "?"
