"""The built-in plugins: the broker's own features that run on the hook chains.

Password file, ACL, HTTP and Redis auth, webhooks, ExHook and metrics are
plugins like any user's (`actormq.hooks.Plugin`), with no other way into
the core. Each is one line of `BUILTINS`: its plugin name and where its
class lives (``"module:Class"``, imported only when it is used).

A built-in loads when `plugins.order` names it (then it sits where it is
named), or when its class's `Plugin.wanted(config)` says its feature is
configured (e.g. ``auth.password_file`` is set); those go after the
plugins that `plugins.order` names, in the order of this table. Its
settings are its own area's config keys (read from `self.context.config`)
plus the ``plugin.<name>.*`` keys of its `config_schema` and the common
ones (timeout, failure_policy, notify_queue).

User plugins are found the same way by name: the entry point group
``actormq.plugins`` (``name = package.module:Class``), or a module on
``plugins.paths`` (see `actormq.hooks.loader`).
"""

from __future__ import annotations

BUILTINS: dict[str, str] = {
    # "passwd": "actormq.auth.passwd:PasswordFile",      (one line per built-in feature)
    "auth_file": "actormq.auth.provider_file:PasswordFilePlugin",
    "auth_http": "actormq.auth.provider_http:HttpAuthPlugin",
    "auth_redis": "actormq.auth.provider_redis:RedisAuthPlugin",
    "acl": "actormq.auth.provider_acl:AclPlugin",
    "webhooks": "actormq.webhooks.plugin:VmqWebhooksPlugin",
    "web_hook": "actormq.webhooks.emqx_plugin:EmqxWebHookPlugin",
    "exhook": "actormq.exhook.plugin:ExhookPlugin",
}

# Whether the config wants a built-in is asked of a light function (a module
# that imports no client library): a broker that configures none of them
# imports none (a worker stays small and starts fast), and one installed
# without an optional extra starts when its feature is not configured.
WANTED: dict[str, str] = {
    "auth_file": "actormq.auth.configured:password_file",
    "auth_http": "actormq.auth.configured:http",
    "auth_redis": "actormq.auth.configured:redis",
    "acl": "actormq.auth.configured:acl",
    "webhooks": "actormq.webhooks.configured:vmq_webhooks",
    "web_hook": "actormq.webhooks.configured:emqx_web_hook",
    "exhook": "actormq.exhook.configured:wanted",
}
