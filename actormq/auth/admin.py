"""The auth area's worker side of the control channel, and its SIGHUP reload.

Admin commands (asked by the node for the management API and the CLI):
`acl.reload` re-reads the ACL and password files and empties every ACL
cache; `acl_cache.list` / `acl_cache.clean` (args `{"clientid": ...}`)
answer one client's cached ACL results as rows / empty them (the routes
`GET/DELETE /api/v4/clients/{clientid}/acl_cache` ask every worker).

`watch_reloads(broker)` makes every SIGHUP do what `acl.reload` does.
"""

from __future__ import annotations

from actormq.mgmt.commands import CommandError, admin_command

_RELOADING = ("auth_file", "acl")


def _plugin(broker, name: str):
    for loaded in broker.hooks:
        if loaded.plugin.name == name:
            return loaded.plugin
    return None


def reload_files(broker) -> list[str]:
    """Re-read the password and ACL files, empty the ACL caches; the plugins that did."""
    done = []
    for name in _RELOADING:
        plugin = _plugin(broker, name)
        if plugin is not None:
            plugin.reload()
            done.append(name)
    return done


def watch_reloads(broker) -> None:
    """Re-read the auth files on every config reload (SIGHUP), changed keys or not."""
    broker.reloader.on_reload((), lambda _config: reload_files(broker), always=True)


def _client_id(args: dict) -> str:
    client_id = args.get("clientid")
    if not isinstance(client_id, str) or not client_id:
        raise CommandError("clientid is required")
    return client_id


@admin_command("acl.reload")
def acl_reload(broker, args: dict) -> dict:
    return {"reloaded": reload_files(broker)}


@admin_command("acl_cache.list")
def acl_cache_list(broker, args: dict) -> list[dict]:
    plugin = _plugin(broker, "acl")
    return (plugin.cache_of(_client_id(args)) if plugin is not None else None) or []


@admin_command("acl_cache.clean")
def acl_cache_clean(broker, args: dict) -> list[dict]:
    plugin = _plugin(broker, "acl")
    cleaned = plugin is not None and plugin.clear_cache(_client_id(args))
    return [{"cleaned": True}] if cleaned else []
