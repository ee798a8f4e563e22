"""Password hash formats of the files users bring, and the one we write.

- `$6$salt$hash`: SHA-512 of password + salt (Mosquitto 1.x `mosquitto_passwd`,
  VerneMQ `vmq-passwd`); salt and hash in standard base64.
- `$7$iterations$salt$hash`: PBKDF2-HMAC-SHA512 (Mosquitto 2.x default); what
  `actormq passwd` writes, so a Mosquitto reads our files as well.
- `$2a$` / `$2b$` / `$2y$`: bcrypt (the `bcrypt` library, extra `auth`; imported
  when a bcrypt hash is checked).

Anything else is refused: `parse_hash` raises `HashError` saying why.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass


SALT_LEN = 12
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default; kept so both brokers agree on cost
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


class HashError(ValueError):
    """A stored password is not a hash in a format we read."""


@dataclass(frozen=True, slots=True)
class StoredHash:
    """A parsed password hash: its scheme and what verifying needs."""

    scheme: str  # "sha512", "pbkdf2-sha512" or "bcrypt"
    salt: bytes
    digest: bytes
    iterations: int = 0

    def verify(self, password: bytes) -> bool:
        """True when `password` hashes to this digest (constant-time compare)."""
        if self.scheme == "bcrypt":
            import bcrypt
            try:
                return bcrypt.checkpw(password, self.digest)
            except ValueError:
                return False
        if self.scheme == "sha512":
            computed = hashlib.sha512(password + self.salt).digest()
        else:
            computed = hashlib.pbkdf2_hmac("sha512", password, self.salt, self.iterations, len(self.digest))
        return hmac.compare_digest(computed, self.digest)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HashError(f"{what} is not base64") from None


def parse_hash(text: str) -> StoredHash:
    """The StoredHash of a `$6$`, `$7$` or bcrypt hash; HashError for anything else."""
    if text.startswith(_BCRYPT_PREFIXES):
        if len(text) != 60:
            raise HashError("bcrypt hash is not 60 characters long")
        return StoredHash("bcrypt", b"", text.encode("ascii", "replace"))
    if text.startswith("$6$"):
        parts = text.split("$")
        if len(parts) != 4:
            raise HashError("a $6$ hash is $6$salt$hash")
        return StoredHash("sha512", _b64(parts[2], "salt"), _check_len(_b64(parts[3], "hash"), 64))
    if text.startswith("$7$"):
        parts = text.split("$")
        if len(parts) != 5 or not parts[2].isdigit() or int(parts[2]) < 1:
            raise HashError("a $7$ hash is $7$iterations$salt$hash")
        return StoredHash("pbkdf2-sha512", _b64(parts[3], "salt"), _check_len(_b64(parts[4], "hash"), 64),
                          int(parts[2]))
    if text.startswith("$"):
        raise HashError(f"unknown hash scheme {text.split('$')[1]!r} (expected $6$, $7$ or bcrypt $2b$)")
    raise HashError("plain-text password refused; hash it with `actormq passwd` or mosquitto_passwd")


def _check_len(digest: bytes, length: int) -> bytes:
    if len(digest) != length:
        raise HashError(f"hash is {len(digest)} bytes, expected {length}")
    return digest


def make_pbkdf2_hash(password: str, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """A `$7$` PBKDF2-SHA512 hash of `password`, as mosquitto_passwd writes it."""
    salt = os.urandom(SALT_LEN) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
