"""Whether the config asks for each built-in auth plugin: a module that imports
no client library (aiohttp, redis), so a broker that configures none of them
loads none of them (see `actormq.hooks.builtins.WANTED`)."""

from __future__ import annotations

from typing import Any


def password_file(config: Any) -> bool:
    """`auth.password_file` is set."""
    return bool(config.get("auth.password_file"))


def http(config: Any) -> bool:
    """`auth.http.auth_req.url` is set."""
    return bool(config.get("auth.http.auth_req.url"))


def redis(config: Any) -> bool:
    """`auth.redis.server` is set."""
    return bool(config.get("auth.redis.server"))


def acl(config: Any) -> bool:
    """An ACL file, an HTTP ACL request or Redis is configured."""
    return bool(config.get("acl.file") or config.get("auth.http.acl_req.url") or config.get("auth.redis.server"))
