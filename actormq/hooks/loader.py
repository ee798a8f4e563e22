"""Finding, checking and building the plugins a config names.

`plugins.order = a, b, c` names the plugins to load, outermost first. Each
name is looked up, in this order:

1. the built-ins (`actormq.hooks.builtins.BUILTINS`);
2. the entry point group ``actormq.plugins`` of the installed packages
   (``[project.entry-points."actormq.plugins"] name = "package.module:Class"``);
3. a module of that name in one of the `plugins.paths` directories
   (``dir/name.py`` or ``dir/name/__init__.py``); the class is the module's
   ``PLUGIN`` attribute, else its one `Plugin` subclass.

Built-ins whose `Plugin.wanted(config)` is true load after the named ones.
`check_plugins` runs in the node before any worker starts: an unknown name,
a module that does not import, a class that is not a plugin, a
``plugin.<name>.<key>`` its schema does not know or a bad value stop the
start with the file, line and key (exit 2). `build_hooks` then makes each
worker's `Hooks` from the checked classes and settings. `reload_class`
re-imports a plugin's module (``actormq plugin reload``).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actormq.errors import ConfigError
from actormq.hooks.builtins import BUILTINS, WANTED
from actormq.hooks.health import BreakerSettings
from actormq.hooks.plugin import Plugin, PluginContext
from actormq.hooks.registry import DECIDE_DEFAULT_KEYS, Hooks

ENTRY_POINT_GROUP = "actormq.plugins"
_SETTING_PREFIX = "plugin."


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """A plugin to load: its name, class, checked settings and where the class came from."""

    name: str
    cls: type[Plugin]
    settings: dict
    origin: str


def ordered_names(config) -> list[str]:
    return [name.strip() for name in config["plugins.order"].split(",") if name.strip()]


def check_plugins(config, config_file: str | os.PathLike | None = None) -> list[PluginSpec]:
    """Every plugin the config loads, in order, with its settings checked (ConfigError)."""
    where = _Where(config, config_file)
    names = ordered_names(config)
    if len(set(names)) != len(names):
        raise ConfigError("a plugin is named twice", **where("plugins.order"))
    classes = []
    for name in names:
        try:
            classes.append((name, *find_class(name, config)))
        except ConfigError as err:
            raise ConfigError(str(err), **where("plugins.order")) from None
    for name, spec in BUILTINS.items():
        if name not in names and _builtin_wanted(name, spec, config):
            classes.append((name, _import_class(spec, name), f"built-in {spec}"))
    specs = [PluginSpec(name, cls, checked_settings(name, cls, config, where), origin)
             for name, cls, origin in classes]
    _refuse_settings_of_unloaded(config, {spec.name for spec in specs}, where)
    return specs


def build_hooks(config, specs: list[PluginSpec], worker: int = 0) -> Hooks:
    """One worker's registry: an instance of each plugin, in order."""
    hooks = Hooks({point: config[key] for point, key in DECIDE_DEFAULT_KEYS.items()},
                  BreakerSettings(config["plugins.breaker.failures"],
                                  float(config["plugins.breaker.open_for"])))
    context = PluginContext(config, worker)
    for spec in specs:
        hooks.add(instantiate(spec, context))
    return hooks


def instantiate(spec: PluginSpec, context: PluginContext) -> Plugin:
    plugin = spec.cls(spec.settings, context)
    if not type(plugin).name:
        plugin.name = spec.name
    return plugin


def find_class(name: str, config) -> tuple[type[Plugin], str]:
    """The plugin class a name stands for and where it was found (ConfigError if none)."""
    if name in BUILTINS:
        return _import_class(BUILTINS[name], name), f"built-in {BUILTINS[name]}"
    import importlib.metadata     # only for a name that is not built in: it loads the email package

    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name):
        return _checked_class(_load(entry.load, name), name), f"entry point {entry.value}"
    for directory in _paths(config):
        if (directory / f"{name}.py").is_file() or (directory / name / "__init__.py").is_file():
            if str(directory) not in sys.path:
                sys.path.insert(0, str(directory))
            module = _load(lambda: importlib.import_module(name), name)
            return class_in_module(module, name), f"{module.__file__}"
    searched = ", ".join(str(p) for p in _paths(config)) or "no plugins.paths"
    raise ConfigError(f"no plugin named {name!r}: not built in, no {ENTRY_POINT_GROUP} entry point, "
                      f"no module {name} in {searched}")


def reload_class(cls: type[Plugin], name: str) -> type[Plugin]:
    """Re-import the module of a plugin's class and return the class anew (ConfigError
    when the module no longer imports or has no such plugin)."""
    module = sys.modules[cls.__module__]
    _forget_bytecode(module)
    module = _load(lambda: importlib.reload(module), name)
    if getattr(module, cls.__qualname__, None) is not None:
        return _checked_class(getattr(module, cls.__qualname__), name)
    return class_in_module(module, name)


def _forget_bytecode(module) -> None:
    """Drop the module's cached bytecode: a source rewritten within the same second
    and at the same size would otherwise be taken for the cached one."""
    cached = getattr(module, "__cached__", None)
    if cached:
        with contextlib.suppress(OSError):
            os.unlink(cached)


def class_in_module(module, name: str) -> type[Plugin]:
    chosen = getattr(module, "PLUGIN", None)
    if chosen is None:
        found = [value for value in vars(module).values() if inspect.isclass(value)
                 and issubclass(value, Plugin) and value is not Plugin
                 and value.__module__ == module.__name__]
        if len(found) != 1:
            raise ConfigError(f"module {module.__name__} defines {len(found)} Plugin classes; "
                              "say which with PLUGIN = TheClass")
        chosen = found[0]
    return _checked_class(chosen, name)


def _builtin_wanted(name: str, spec: str, config) -> bool:
    """Whether a built-in's feature is configured (see `builtins.WANTED`)."""
    check = WANTED.get(name)
    if check is None:
        return _import_class(spec, name).wanted(config)
    module_name, function = check.split(":")
    return getattr(importlib.import_module(module_name), function)(config)


def _import_class(spec: str, name: str) -> type[Plugin]:
    module_name, _, class_name = spec.partition(":")
    module = _load(lambda: importlib.import_module(module_name), name)
    return _checked_class(getattr(module, class_name), name)


def _load(load, name: str) -> Any:
    try:
        return load()
    except Exception as exc:
        raise ConfigError(f"plugin {name!r} does not import: {type(exc).__name__}: {exc}") from None


def _checked_class(cls: Any, name: str) -> type[Plugin]:
    if not (inspect.isclass(cls) and issubclass(cls, Plugin)):
        raise ConfigError(f"plugin {name!r}: {cls!r} is not a subclass of actormq.hooks.Plugin")
    if cls.name and cls.name != name:
        raise ConfigError(f"plugin {name!r}: its class is named {cls.name!r}")
    try:
        cls.hooks()
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    return cls


def _paths(config) -> list[Path]:
    return [Path(part).expanduser().resolve() for part in config["plugins.paths"].split(":")
            if part.strip()]


def checked_settings(name: str, cls: type[Plugin], config, where=None) -> dict:
    """The typed settings of plugin `name` (its ``plugin.<name>.*`` keys on its schema's
    defaults); ConfigError for a key the schema does not know or a bad value."""
    where = where or _Where(config, None)
    schema = {key.name: key for key in cls.schema()}
    settings = {key.name: key.default for key in schema.values()}
    prefix = f"{_SETTING_PREFIX}{name}."
    for rest, raw in config.section(prefix).items():
        key = schema.get(rest)
        if key is None:
            close = difflib.get_close_matches(rest, schema, n=1, cutoff=0.6)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            known = ", ".join(schema)
            raise ConfigError(f"plugin {name} has no setting {rest!r}{hint}; it has: {known}",
                              **where(prefix + rest))
        try:
            settings[rest] = key.parse(raw) if isinstance(raw, str) else key.check(raw)
        except ValueError as err:
            raise ConfigError(str(err), **where(prefix + rest)) from None
    return settings


def _refuse_settings_of_unloaded(config, loaded: set[str], where) -> None:
    for key in config:
        if key.startswith(_SETTING_PREFIX):
            name = key[len(_SETTING_PREFIX):].split(".", 1)[0]
            if name not in loaded:
                raise ConfigError(f"plugin {name!r} is not loaded (add it to plugins.order)",
                                  **where(key))


class _Where:
    """The file and line (or variable, or command line) a key's value came from."""

    def __init__(self, config, config_file) -> None:
        self.config = config
        self.config_file = os.fspath(config_file) if config_file else None

    def __call__(self, key: str) -> dict:
        source = self.config.source(key)
        if source == "env":
            return {"key": key, "source": "environment variable ACTORMQ__"
                    + key.upper().replace(".", "__")}
        if source == "flag":
            return {"key": key, "source": "command line"}
        if source == "file" and self.config_file:
            return {"key": key, "source": self.config_file, "line": self._line(key)}
        return {"key": key}

    def _line(self, key: str) -> int | None:
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        try:
            lines = Path(self.config_file).read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        found = [number for number, line in enumerate(lines, start=1) if pattern.match(line)]
        return found[-1] if found else None
