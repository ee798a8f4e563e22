"""Worker-side admin commands: the registry the control channel answers from.

Any area makes something of a worker available to the node (and so to the
HTTP API and the CLI) by registering a command under a dotted name:

    from actormq.mgmt.commands import admin_command

    @admin_command("acl_cache.list")
    def acl_cache_list(broker, args: dict):
        return [{"topic": t, "access": a, "result": r} for t, a, r in ...]

- `broker` is the worker's `Broker`; read its state through accessor methods.
- `args` is the JSON object the node sent (never None; {} when there are none).
- The handler returns JSON-able data (orjson: dicts, lists, str, int, float,
  bool, None). A list of dicts is a list of *rows*: the node adds `node` and
  `worker` to each when it aggregates (see `actormq.mgmt.channel`).
- It may be a coroutine function (`async def`): the worker awaits it on its
  loop, so it may do I/O, but must not block the loop.
- It raises `CommandError("message")` for a bad request (the node answers
  400 with that message); any other exception is logged and reported as
  that worker's failure.

Registration happens at import time (the decorator) or at run time
(`REGISTRY.register(name, handler)` / `REGISTRY.unregister(name)`, e.g. by a
plugin when it is enabled or disabled). A worker imports the modules in
`BUILTIN_MODULES` when the first admin request reaches it (not on its way to
serving clients); an area whose module is not imported otherwise adds itself
there (one line).

Streams (`admin_stream`) are commands that go on answering: the handler gets
`emit(event)` to send JSON-able events to the node and returns a callable
that stops it (called when the node closes the stream or the worker stops):

    @admin_stream("trace.client")
    def trace_client(broker, args, emit):
        ...; return stop
"""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import Any, Callable

log = logging.getLogger("actormq.mgmt")

Handler = Callable[[Any, dict], Any]
StreamHandler = Callable[[Any, dict, Callable[[Any], None]], Callable[[], None]]

BUILTIN_MODULES = (
    "actormq.mgmt.worker_info",
    "actormq.mgmt.worker_clients",
    "actormq.mgmt.worker_stats",
    "actormq.mgmt.worker_retained",
    "actormq.mgmt.worker_publish",
    "actormq.mgmt.banned",
    "actormq.mgmt.trace",
    "actormq.hooks.admin",
    "actormq.auth.admin",
    "actormq.webhooks.commands",
)


class CommandError(Exception):
    """A command refused its arguments; the message goes back to the caller."""


class UnknownCommand(CommandError):
    """No handler is registered under that name in this worker."""


class CommandRegistry:
    """Name → handler, for plain commands and for streams."""

    def __init__(self) -> None:
        self._commands: dict[str, Handler] = {}
        self._streams: dict[str, StreamHandler] = {}

    def register(self, name: str, handler: Handler) -> None:
        if name in self._commands and self._commands[name] is not handler:
            log.warning("admin command %s registered again: the new handler replaces the old", name)
        self._commands[name] = handler

    def unregister(self, name: str) -> None:
        self._commands.pop(name, None)

    def register_stream(self, name: str, handler: StreamHandler) -> None:
        self._streams[name] = handler

    def unregister_stream(self, name: str) -> None:
        self._streams.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._commands) + sorted(self._streams)

    async def run(self, broker, name: str, args: dict) -> Any:
        """Run one command and return its (awaited) result."""
        handler = self._commands.get(name)
        if handler is None:
            raise UnknownCommand(f"unknown admin command {name!r}")
        result = handler(broker, args)
        if inspect.isawaitable(result):
            result = await result
        return result

    def open_stream(self, broker, name: str, args: dict,
                    emit: Callable[[Any], None]) -> Callable[[], None]:
        handler = self._streams.get(name)
        if handler is None:
            raise UnknownCommand(f"unknown admin stream {name!r}")
        return handler(broker, args, emit)


REGISTRY = CommandRegistry()


def admin_command(name: str) -> Callable[[Handler], Handler]:
    """Decorator: register a worker-side admin command (see the module docstring)."""

    def register(handler: Handler) -> Handler:
        REGISTRY.register(name, handler)
        return handler

    return register


def admin_stream(name: str) -> Callable[[StreamHandler], StreamHandler]:
    """Decorator: register a worker-side admin stream (see the module docstring)."""

    def register(handler: StreamHandler) -> StreamHandler:
        REGISTRY.register_stream(name, handler)
        return handler

    return register


def load_builtin_commands() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


__all__ = ["admin_command", "admin_stream", "CommandError", "UnknownCommand", "REGISTRY",
           "CommandRegistry", "load_builtin_commands"]
