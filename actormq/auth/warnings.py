"""The start banner's auth warning: anonymous access allowed on a listener
that other machines can reach (bound to a non-loopback address)."""

from __future__ import annotations

import ipaddress


def _reachable_from_outside(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.strip().lower() != "localhost"


def listener_hosts(config) -> list[str]:
    """Every listener address in the config (`listener.tcp.host`, `listener.<kind>.<name>.host`, ...)."""
    return [value for key, value in sorted(config.section("listener.").items())
            if key.endswith("host") and isinstance(value, str)]


def anonymous_warning(config) -> str | None:
    """One warning line for the banner, or None when anonymous access is off or stays on loopback."""
    if not config.get("mqtt.allow_anonymous", True):
        return None
    exposed = [host for host in listener_hosts(config) if _reachable_from_outside(host)]
    if not exposed:
        return None
    return (f"WARNING: anonymous access is allowed on {', '.join(exposed)} (not loopback): "
            "set mqtt.allow_anonymous = false and an auth source (e.g. auth.password_file)")
