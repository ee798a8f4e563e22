"""The password file: `user:hash` lines (Mosquitto / VerneMQ / bcrypt hashes).

Owns reading the file into users (a bad line is reported with its number and
skipped; the rest keeps working), noticing that it changed on disk, and the
line edits of `actormq passwd` (set or delete one user, keep the rest as is).

A third field holds comma-separated flags: `superuser` marks a superuser,
`scram-sha-256=...` the user's SCRAM credentials (`actormq.auth.scram`),
e.g. `alice:$7$...:superuser,scram-sha-256=4096$...`. Mosquitto's reader
stops at the second colon, so the file stays readable there.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from actormq.auth.hashes import HashError, StoredHash, parse_hash
from actormq.auth.scram import FLAG as SCRAM_FLAG
from actormq.auth.scram import ScramCredentials

log = logging.getLogger("actormq.auth")

SUPERUSER_FLAG = "superuser"
_RECHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class PasswordEntry:
    """One user of the file."""

    hash: StoredHash
    superuser: bool = False
    scram: ScramCredentials | None = None


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that could not be read, with its 1-based number and why."""

    line_number: int
    reason: str


def parse_password_lines(text: str) -> tuple[dict[str, PasswordEntry], list[LineError]]:
    """The users of a password file's text and the lines that were skipped."""
    users: dict[str, PasswordEntry] = {}
    errors: list[LineError] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            user, entry = parse_password_line(line)
        except HashError as problem:
            errors.append(LineError(number, str(problem)))
            continue
        users[user] = entry
    return users, errors


def parse_password_line(line: str) -> tuple[str, PasswordEntry]:
    user, sep, rest = line.partition(":")
    if not sep or not user:
        raise HashError("expected user:hash")
    hashed, _, flags = rest.partition(":")
    superuser, scram = False, None
    for flag in filter(None, (part.strip() for part in flags.split(","))):
        name, equals, value = flag.partition("=")
        if flag == SUPERUSER_FLAG:
            superuser = True
        elif name == SCRAM_FLAG and equals:
            try:
                scram = ScramCredentials.parse(value)
            except ValueError as problem:
                raise HashError(str(problem)) from None
        else:
            raise HashError(f"unknown flag {flag!r} (known: {SUPERUSER_FLAG}, {SCRAM_FLAG}=...)")
    return user, PasswordEntry(parse_hash(hashed), superuser, scram)


def _file_identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class PasswordFile:
    """The users of one password file, re-read when the file changes or on `reload()`.

    `PasswordFile.open(path)` raises OSError when the file cannot be read (the
    start stops); later a file that vanished or cannot be read keeps the users
    last read, with one warning line.
    """

    def __init__(self, path: str, clock=time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._users: dict[str, PasswordEntry] = {}
        self._identity: tuple[int, int, int, int] | None = None
        self._checked_at = 0.0

    @classmethod
    def open(cls, path: str) -> "PasswordFile":
        passwords = cls(path)
        passwords._read(os.stat(path))
        return passwords

    def lookup(self, user: str) -> PasswordEntry | None:
        now = self._clock()
        if now - self._checked_at >= _RECHECK_SECONDS:
            self._checked_at = now
            self.reload_if_changed()
        return self._users.get(user)

    @property
    def users(self) -> dict[str, PasswordEntry]:
        return self._users

    def reload_if_changed(self) -> bool:
        try:
            stat = os.stat(self.path)
            if _file_identity(stat) == self._identity:
                return False
            self._read(stat)
        except OSError as problem:
            log.warning("password file %s: cannot read it (%s); keeping the %d users read before",
                        self.path, problem.strerror or problem, len(self._users))
            return False
        return True

    def reload(self) -> None:
        """Read the file again now (SIGHUP)."""
        self._identity = None
        self.reload_if_changed()

    def _read(self, stat: os.stat_result) -> None:
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            users, errors = parse_password_lines(handle.read())
        for error in errors:
            log.warning("password file %s line %d skipped: %s", self.path, error.line_number, error.reason)
        self._users = users
        self._identity = _file_identity(stat)
        log.info("password file %s: %d users", self.path, len(users))


def user_line(user: str, hashed: str, superuser: bool = False, scram: ScramCredentials | None = None) -> str:
    flags = ([SUPERUSER_FLAG] if superuser else []) + ([f"{SCRAM_FLAG}={scram.text()}"] if scram else [])
    return f"{user}:{hashed}" + (":" + ",".join(flags) if flags else "")


def set_user_line(lines: list[str], user: str, new_line: str) -> list[str]:
    """The file's lines with `user`'s line replaced in place by `new_line`, or appended."""
    out, replaced = [], False
    for line in lines:
        if line.partition(":")[0] == user and not line.lstrip().startswith("#"):
            if not replaced:
                out.append(new_line)
                replaced = True
            continue
        out.append(line)
    if not replaced:
        out.append(new_line)
    return out


def delete_user_lines(lines: list[str], user: str) -> tuple[list[str], bool]:
    """The file's lines without `user`, and whether the user was there."""
    kept = [line for line in lines if line.lstrip().startswith("#") or line.partition(":")[0] != user]
    return kept, len(kept) != len(lines)
