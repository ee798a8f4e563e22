"""Hooks and Python plugins: how the broker is extended.

Read in this order (each module's docstring is its documentation):

- `actormq.hooks.points` — `HookPoint`, every point in a client's life, its
  mode, arguments, plugin method name, and its VerneMQ / EMQX / Gmqtt names.
- `actormq.hooks.info` — what hooks receive: `ClientInfo` (client id,
  username, password, peer, protocol, listener/mountpoint, cert CN/DN),
  `AuthExchange` (MQTT 5 enhanced auth), `DropReason`.
- `actormq.hooks.results` — what hooks answer: `Ok(**modifiers)`, `NEXT`,
  `Error(reason_code, reason)`, `Continue(auth_data)`; `DROP` and
  `modified(message, ...)` for folds; the chain's `Decision`.
- `actormq.hooks.plugin` — the `Plugin` base class: name, hook methods
  (sync or async), `config_schema` of `actormq.conf.keytypes.Key`, start/stop.
- `actormq.hooks.chains` — the runners: notify, decide, fold; timeouts,
  failure policy (deny / ignore).
- `actormq.hooks.health` — call statistics and the circuit breaker.
- `actormq.hooks.registry` — `Hooks`: plugins in order, a chain per point,
  enable / disable / replace at runtime; built-ins register the same way
  (`actormq.hooks.builtins`).

The core asks a chain only where a plugin hooks the point (the attribute of
`Hooks` is None otherwise), so with no plugin the broker runs as if the
hooks were not there.
"""

from actormq.hooks.chains import Chain
from actormq.hooks.health import BreakerSettings
from actormq.hooks.info import AuthExchange, ClientInfo, DropReason
from actormq.hooks.plugin import Plugin, PluginContext
from actormq.hooks.points import HookPoint, Mode, mapping_table
from actormq.hooks.registry import Hooks
from actormq.hooks.results import (DROP, NEXT, OK, Continue, Decision, Error, Ok,
                                   modified)

__all__ = ["AuthExchange", "BreakerSettings", "Chain", "ClientInfo", "Continue", "DROP",
           "Decision", "DropReason", "Error", "HookPoint", "Hooks", "Mode", "NEXT", "OK", "Ok",
           "Plugin", "PluginContext", "mapping_table", "modified"]
