"""SCRAM-SHA-256 (RFC 7677) credentials and the server side of one exchange,
on the `scramp` library (extra `auth`; imported when SCRAM is used).

Credentials live in the password file's flags field as
`scram-sha-256=ITERATIONS$SALT$STORED_KEY$SERVER_KEY` (base64), written by
`actormq passwd` next to the `$7$` hash (Mosquitto ignores that field).
`ScramExchange` is one client's exchange: `first(client_first)` gives the
server-first message, `final(client_final)` the server-final message, or
`ScramFailed` says why not.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable

METHOD = "SCRAM-SHA-256"
FLAG = "scram-sha-256"
ITERATIONS = 4096


def _mechanism():
    from scramp import ScramMechanism
    return ScramMechanism(METHOD)


def _scram_errors() -> tuple[type[Exception], ...]:
    from scramp import ScramException
    return (ScramException, UnicodeDecodeError)


class ScramFailed(Exception):
    """The exchange failed: unknown user, wrong proof, malformed message."""


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    @classmethod
    def from_password(cls, password: str, iterations: int = ITERATIONS) -> "ScramCredentials":
        salt, stored_key, server_key, count = _mechanism().make_auth_info(password, iteration_count=iterations)
        return cls(salt, stored_key, server_key, count)

    @classmethod
    def parse(cls, text: str) -> "ScramCredentials":
        """From `ITERATIONS$SALT$STORED$SERVER`; ValueError when malformed."""
        parts = text.split("$")
        if len(parts) != 4 or not parts[0].isdigit():
            raise ValueError(f"{FLAG} credentials are ITERATIONS$SALT$STORED_KEY$SERVER_KEY")
        salt, stored, server = (base64.b64decode(part, validate=True) for part in parts[1:])
        return cls(salt, stored, server, int(parts[0]))

    def text(self) -> str:
        encoded = (base64.b64encode(value).decode() for value in (self.salt, self.stored_key, self.server_key))
        return "$".join((str(self.iterations), *encoded))


class ScramExchange:
    """The server side of one SCRAM-SHA-256 exchange; `lookup(user)` gives credentials or None."""

    def __init__(self, lookup: Callable[[str], ScramCredentials | None], mqtt_username: str | None) -> None:
        self._lookup = lookup
        self._mqtt_username = mqtt_username
        self._server = _mechanism().make_server(self._auth_info)
        self.user: str | None = None

    def _auth_info(self, user: str):
        if self._mqtt_username is not None and user != self._mqtt_username:
            raise ScramFailed(f"SCRAM user {user!r} is not the CONNECT username {self._mqtt_username!r}")
        credentials = self._lookup(user)
        if credentials is None:
            raise ScramFailed(f"no SCRAM credentials for user {user!r}")
        self.user = user
        return credentials.salt, credentials.stored_key, credentials.server_key, credentials.iterations

    def first(self, client_first: bytes) -> bytes:
        try:
            self._server.set_client_first(client_first.decode("utf-8"))
            return self._server.get_server_first().encode("utf-8")
        except _scram_errors() as problem:
            raise ScramFailed(str(problem)) from None

    def final(self, client_final: bytes) -> bytes:
        try:
            self._server.set_client_final(client_final.decode("utf-8"))
            return self._server.get_server_final().encode("utf-8")
        except _scram_errors() as problem:
            raise ScramFailed(str(problem)) from None
