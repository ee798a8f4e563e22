"""Config keys of the hooks area: which plugins load, in which order, where they
are found, how their chains decide when nobody decides, and the circuit breaker.
Per-plugin settings are `plugin.<name>.<key>` (validated against the plugin's
own schema when the plugins load: `actormq.hooks.loader`)."""

from __future__ import annotations

from actormq.conf.keytypes import Key, Kind

_ALLOW_DENY = ("allow", "deny")

KEYS: tuple[Key, ...] = (
    Key("plugins.order", Kind.STR, "",
        "Comma-separated plugin names to load; the first is outermost (runs first in every chain)."),
    Key("plugins.paths", Kind.STR, "",
        "Directories (separated by ':') searched for plugin modules named in plugins.order."),
    Key("plugins.default.authenticate", Kind.ENUM, "deny",
        "Decision on CONNECT when every plugin that hooks authentication says next.",
        choices=_ALLOW_DENY),
    Key("plugins.default.enhanced_auth", Kind.ENUM, "deny",
        "Decision on MQTT 5 enhanced authentication when every plugin says next.",
        choices=_ALLOW_DENY),
    Key("plugins.default.authorize_publish", Kind.ENUM, "allow",
        "Decision on a PUBLISH when every plugin that hooks its authorization says next.",
        choices=_ALLOW_DENY),
    Key("plugins.default.authorize_subscribe", Kind.ENUM, "allow",
        "Decision on a subscription filter when every plugin that hooks it says next.",
        choices=_ALLOW_DENY),
    Key("plugins.default.unsubscribe", Kind.ENUM, "allow",
        "Decision on an unsubscribe filter when every plugin that hooks it says next.",
        choices=_ALLOW_DENY),
    Key("plugins.breaker.failures", Kind.INT, "5",
        "Failures in a row after which a plugin is not called for plugins.breaker.open_for.",
        minimum=1),
    Key("plugins.breaker.open_for", Kind.DURATION, "10s",
        "How long a plugin that keeps failing is not called (its failure policy decides).",
        minimum=1),
)
PATTERNS: tuple[Key, ...] = (
    Key("plugin.<name>.<key>", Kind.STR, "",
        "A setting of plugin <name>, checked against that plugin's own schema."),
    Key("plugin.<name>.<group>.<key>", Kind.STR, "",
        "A setting of plugin <name> with a two-part name, checked against the plugin's schema."),
)
