"""The password-file provider (plugin `auth_file`): CONNECT username/password
against `auth.password_file`, and MQTT 5 enhanced authentication with
SCRAM-SHA-256 against the same users.

Answers at `client.authenticate`: no username → allowed when
`mqtt.allow_anonymous` (the core refuses it otherwise); a user the file does
not know → next (another source may know it); a wrong password → 0x86 Bad
user name or password (3.1.1: 4; the core logs refusals at info with
client id and peer);
right → allowed, with `superuser=True` for a `superuser` line. bcrypt hashes
are checked on a thread (they cost milliseconds by design).
"""

from __future__ import annotations

import asyncio

from actormq.auth import configured
from actormq.auth.passwd_file import PasswordEntry, PasswordFile
from actormq.auth.scram import METHOD as SCRAM_METHOD
from actormq.auth.scram import ScramCredentials, ScramExchange, ScramFailed
from actormq.errors import ConfigError
from actormq.hooks import NEXT, OK, Continue, Error, Ok, Plugin

BAD_USER_NAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87


def _granted(entry: PasswordEntry) -> Ok:
    return Ok(superuser=True) if entry.superuser else OK


class PasswordFilePlugin(Plugin):
    name = "auth_file"

    @classmethod
    def wanted(cls, config) -> bool:
        return configured.password_file(config)

    def start(self) -> None:
        config = self.context.config
        path = config["auth.password_file"]
        try:
            self.passwords = PasswordFile.open(path)
        except OSError as problem:
            raise ConfigError(f"cannot read the password file {path}: {problem.strerror or problem}",
                              key="auth.password_file") from None
        self.allow_anonymous = bool(config.get("mqtt.allow_anonymous", True))
        self.scram = bool(config.get("auth.scram", True))

    def reload(self, config=None) -> None:
        """Read the file again (SIGHUP, `actormq acl reload`)."""
        self.passwords.reload()

    def on_client_authenticate(self, client):
        if client.username is None:
            if self.allow_anonymous:
                return OK
            return Error(NOT_AUTHORIZED, "no username and anonymous access is off")
        entry = self.passwords.lookup(client.username)
        if entry is None:
            return NEXT
        if client.password is None:
            return Error(BAD_USER_NAME_OR_PASSWORD, f"no password for user {client.username!r}")
        if entry.hash.scheme == "bcrypt":
            return self._verify_on_thread(client, entry)
        return self._answer(client, entry, entry.hash.verify(client.password))

    async def _verify_on_thread(self, client, entry: PasswordEntry):
        return self._answer(client, entry, await asyncio.to_thread(entry.hash.verify, client.password))

    def _answer(self, client, entry: PasswordEntry, right: bool):
        if not right:
            return Error(BAD_USER_NAME_OR_PASSWORD, f"wrong password for user {client.username!r}")
        return _granted(entry)

    # -- MQTT 5 enhanced authentication ------------------------------------------------

    def _scram_credentials(self, user: str) -> ScramCredentials | None:
        entry = self.passwords.lookup(user)
        return entry.scram if entry is not None else None

    def on_client_enhanced_auth(self, client, exchange):
        if not self.scram or exchange.method != SCRAM_METHOD:
            return NEXT
        try:
            if exchange.state is None:
                scram = ScramExchange(self._scram_credentials, client.username)
                return Continue(scram.first(exchange.data or b""), state=scram)
            scram = exchange.state
            server_final = scram.final(exchange.data or b"")
        except ScramFailed as problem:
            return Error(BAD_USER_NAME_OR_PASSWORD, f"SCRAM-SHA-256: {problem}")
        entry = self.passwords.lookup(scram.user)
        superuser = {"superuser": True} if entry is not None and entry.superuser else {}
        return Ok(auth_data=server_final, **superuser)
