"""Config keys of the exhook area."""

from __future__ import annotations

from actormq.conf.keytypes import Key, Kind  # noqa: F401  (used as keys are added)

KEYS: tuple[Key, ...] = ()
PATTERNS: tuple[Key, ...] = ()
