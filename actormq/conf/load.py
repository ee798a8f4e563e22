"""Loading the config into an immutable `Config`: defaults < file < environment < flags.

Owns the `actormq.conf` file syntax (`dotted.key = value` lines, `#` comments,
optional quotes), the `ACTORMQ__DOTTED__KEY` environment variables and the
command-line overrides. Every bad input becomes a `ConfigError` that names
where it came from (file and line, variable, or command line) and the key.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from actormq.conf.schema import PATTERNS, SCHEMA, default_values, lookup
from actormq.errors import ConfigError

ENV_PREFIX = "ACTORMQ__"
DEFAULT, FILE, ENV, FLAG = "default", "file", "env", "flag"
_INLINE_COMMENT = re.compile(r"\s#")


@dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration: every schema key with its typed value and its source.

    Immutable and picklable, so it can be handed to spawned worker processes.
    """

    _values: dict[str, Any]
    _sources: dict[str, str]

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(f"unknown config key {key!r}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(frozenset(self._values.items()))

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def section(self, prefix: str) -> dict[str, Any]:
        """Every key under `prefix` (e.g. "listener.ssl."), by the rest of its name."""
        return {key[len(prefix):]: value for key, value in self._values.items()
                if key.startswith(prefix)}

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def source(self, key: str) -> str:
        """Where the value of `key` came from: "default", "file", "env" or "flag"."""
        if key not in self._sources:
            raise KeyError(f"unknown config key {key!r}")
        return self._sources[key]

    def with_overrides(self, values: Mapping[str, Any], source: str = FLAG) -> Config:
        """A new Config with `values` (typed values or their text form) applied on top."""
        settings = (_Setting(key, value, "override") for key, value in values.items())
        return _build(self._values, self._sources, [(settings, source)])

    def replace(self, **values: Any) -> Config:
        """Like `with_overrides`; call as `config.replace(**{"queue.max_inflight": 50})`."""
        return self.with_overrides(values)


@dataclass(frozen=True, slots=True)
class _Setting:
    """One `key = value` from one place; `origin` and `line` locate it in error messages."""

    key: str
    value: Any
    origin: str
    line: int | None = None


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, str] | None = None) -> Config:
    """Load the config: schema defaults, then the file at `path`, then `env` (default:
    `os.environ`), then `overrides` (the command line). Raises ConfigError."""
    layers: list[tuple[Iterable[_Setting], str]] = []
    if path is not None:
        layers.append((_read_file(path), FILE))
    layers.append((_read_env(os.environ if env is None else env), ENV))
    layers.append(((_Setting(k, v, "command line") for k, v in (overrides or {}).items()), FLAG))
    defaults = default_values()
    return _build(defaults, dict.fromkeys(defaults, DEFAULT), layers)


def default_config() -> Config:
    """The schema defaults alone: no file, no environment, no flags."""
    return load_config(env={})


def _build(values: Mapping[str, Any], sources: Mapping[str, str],
           layers: Iterable[tuple[Iterable[_Setting], str]]) -> Config:
    values, sources = dict(values), dict(sources)
    for settings, source in layers:
        for setting in settings:
            values[setting.key] = _parse(setting)
            sources[setting.key] = source
    _check_consistency(values)
    return Config(values, sources)


def _parse(setting: _Setting) -> Any:
    where = {"key": setting.key, "line": setting.line, "source": setting.origin}
    key = lookup(setting.key)
    if key is None:
        raise ConfigError("unknown key" + _did_you_mean(setting.key), **where)
    try:
        return key.parse(setting.value) if isinstance(setting.value, str) else key.check(setting.value)
    except ValueError as err:
        raise ConfigError(str(err), **where) from None


def _did_you_mean(name: str) -> str:
    names = list(SCHEMA) + [key.name for key in PATTERNS]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_consistency(values: Mapping[str, Any]) -> None:
    if values["storage.max_map_size"] < values["storage.map_size"]:
        size = SCHEMA["storage.map_size"].format(values["storage.map_size"])
        raise ConfigError(f"must be at least storage.map_size ({size})", key="storage.max_map_size")


def _read_env(env: Mapping[str, str]) -> list[_Setting]:
    settings = []
    for name in sorted(env):
        if name.upper().startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX):].lower().replace("__", ".")
            settings.append(_Setting(key, env[name], f"environment variable {name}"))
    return settings


def _read_file(path: str | os.PathLike[str]) -> list[_Setting]:
    origin = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ConfigError(f"cannot read config file: {reason}", source=origin) from None
    lines = enumerate(text.splitlines(), start=1)
    return [setting for number, line in lines if (setting := _parse_line(line, number, origin))]


def _parse_line(line: str, number: int, origin: str) -> _Setting | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    name, equals, raw = stripped.partition("=")
    name = name.strip()
    if not equals or not name:
        raise ConfigError(f"expected 'dotted.key = value', got {stripped!r}", line=number, source=origin)
    try:
        value = _unquote(raw)
    except ValueError as err:
        raise ConfigError(str(err), key=name, line=number, source=origin) from None
    return _Setting(name, value, origin, number)


def _unquote(raw: str) -> str:
    """The value part of a line: a quoted string, or the text before an inline ` #` comment."""
    text = raw.strip()
    if text[:1] not in ("'", '"'):
        return _INLINE_COMMENT.split(text, maxsplit=1)[0].strip()
    end = text.find(text[0], 1)
    if end == -1:
        raise ValueError(f"unterminated quote in {text!r}")
    rest = text[end + 1:].strip()
    if rest and not rest.startswith("#"):
        raise ValueError(f"unexpected text after the closing quote: {rest!r}")
    return text[1:end]
