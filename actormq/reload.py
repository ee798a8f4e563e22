"""Config reload (SIGHUP): which changed keys take effect at once, which need a restart.

The node reloads its config source on SIGHUP and sends the new Config to every
worker on its control pipe. In each worker a `Reloader` holds what the parts
of the worker registered with `on_reload(keys, callback)`: `keys` are key
names or prefixes ending in "." (`"mqtt."`), `callback(new_config)` applies
them. A reload calls every callback one of whose keys changed; changed keys no
callback covers are reported as needing a restart and keep their old value:
callbacks see the old config with only the applied keys changed.
Features that read files (password and ACL files, TLS certificates) register
their keys the same way, and may register a key that did not change in the
config to re-read the file it names on every reload (`always=True`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

log = logging.getLogger("actormq.reload")


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What one reload did: the changed keys applied and those that need a restart."""

    applied: tuple[str, ...]
    needs_restart: tuple[str, ...]


def changed_keys(old, new) -> list[str]:
    """Keys whose value differs between two Configs (set in only one counts)."""
    names = list(old) + [key for key in new if key not in old]
    return [key for key in names if old.get(key) != new.get(key)]


def _covers(keys: tuple[str, ...], name: str) -> bool:
    return any(name == key or (key.endswith(".") and name.startswith(key)) for key in keys)


class Reloader:
    """The worker-side registry of reload callbacks."""

    def __init__(self) -> None:
        self._hooks: list[tuple[tuple[str, ...], Callable, bool]] = []

    def on_reload(self, keys: Iterable[str], callback: Callable, always: bool = False) -> None:
        """Call `callback(new_config)` on a reload that changes one of `keys`
        (every reload with `always`)."""
        self._hooks.append((tuple(keys), callback, always))

    def reloadable(self, name: str) -> bool:
        return any(_covers(keys, name) for keys, _callback, _always in self._hooks)

    def apply(self, old, new):
        """Run the callbacks; returns (the effective config: `old` with the applied
        keys from `new`, ReloadResult)."""
        changed = changed_keys(old, new)
        applied = tuple(name for name in changed if name in new and self.reloadable(name))
        effective = with_applied(old, new, applied)
        for keys, callback, always in self._hooks:
            if always or any(_covers(keys, name) for name in applied):
                try:
                    callback(effective)
                except Exception:
                    log.exception("reloading %s failed", ", ".join(keys))
        return effective, ReloadResult(applied, tuple(n for n in changed if n not in applied))


def with_applied(old, new, applied: Iterable[str]):
    """`old` with the values of the `applied` keys taken from `new`."""
    values = {name: new[name] for name in applied}
    return old.with_overrides(values) if values else old
