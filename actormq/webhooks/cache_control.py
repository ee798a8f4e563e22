"""The `Cache-Control` header of a webhook answer: how long an auth answer may be cached.

`max_age(header)` reads `max-age=N` among any other directives, in any
letter case; `no-store`, `no-cache` or `max-age=0` mean: do not cache.
`colon_typo(header)` spots `max-age:N`, which VerneMQ silently ignores (so a
user sees only cache misses) and which actormq reports once per endpoint.
"""

from __future__ import annotations

import re

_DIRECTIVE = re.compile(r"^\s*([A-Za-z-]+)\s*(?:=\s*\"?([^\",]*)\"?)?\s*$")
_COLON_TYPO = re.compile(r"max-age\s*:\s*(\d+)", re.IGNORECASE)


def max_age(header: str | None) -> int | None:
    """Seconds the answer may be cached, or None when it may not be."""
    if not header:
        return None
    seconds = None
    for part in header.split(","):
        match = _DIRECTIVE.match(part)
        if not match:
            continue
        name, value = match.group(1).lower(), (match.group(2) or "").strip()
        if name in ("no-store", "no-cache"):
            return None
        if name == "max-age" and value.isdigit():
            seconds = int(value)
    return seconds or None


def colon_typo(header: str | None) -> str | None:
    """The corrected directive (`max-age=300`) when the header says `max-age:300`, else None."""
    match = _COLON_TYPO.search(header or "")
    return f"max-age={match.group(1)}" if match else None
