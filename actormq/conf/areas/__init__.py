"""The config keys of each feature area, collected for `actormq.conf.schema`.

Each module here owns the keys of one area: `KEYS` (fixed keys with a
default) and `PATTERNS` (keys with a `<name>` segment, present only when
set). Adding an area is one module and one line below.
"""

from __future__ import annotations

from actormq.conf.areas import auth, exhook, hooks, listeners, management, webhooks

_AREAS = (listeners, management, hooks, auth, webhooks, exhook)

KEYS = tuple(key for area in _AREAS for key in area.KEYS)
PATTERNS = tuple(key for area in _AREAS for key in area.PATTERNS)
