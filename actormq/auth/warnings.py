"""The start banner's auth warning: anonymous access allowed on a listener
that other machines can reach (bound to a non-loopback address)."""

from __future__ import annotations

import ipaddress

from actormq.transport.listeners import plan_listeners


def _reachable_from_outside(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.strip().lower() != "localhost"


def listener_hosts(config) -> list[str]:
    """The address of every network listener the config names (Unix sockets are local)."""
    return [listener.host for listener in plan_listeners(config) if listener.type != "unix"]


def anonymous_warning(config) -> str | None:
    """One warning line for the banner, or None when anonymous access is off or stays on loopback."""
    if not config.get("mqtt.allow_anonymous", True):
        return None
    exposed = [host for host in listener_hosts(config) if _reachable_from_outside(host)]
    if not exposed:
        return None
    return (f"WARNING: anonymous access is allowed on {', '.join(exposed)} (not loopback): "
            "set mqtt.allow_anonymous = false and an auth source (e.g. auth.password_file)")
