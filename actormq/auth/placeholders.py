"""EMQX 4 placeholders in request parameters: `%u %c %a %r %P %p %C %d` and,
for ACL requests, `%A %t %m`.

`%u` username, `%c` client id, `%a` peer IP address, `%r` protocol, `%P`
password, `%p` the port the listener accepted on, `%C` / `%d` the common
name / subject of the client's TLS certificate, `%A` access (1 subscribe,
2 publish), `%t` topic, `%m` mountpoint. A value the client does not have
(no username, no certificate) fills in as the empty string.
"""

from __future__ import annotations

import re
from typing import Callable

from actormq.auth.acl_rules import Action, ClientInfo

_PLACEHOLDER = re.compile(r"%[ucarPpCdAtm]")
ACCESS_CODES = {Action.SUBSCRIBE: "1", Action.PUBLISH: "2"}


def client_values(client: ClientInfo, sock_port: int = 0) -> dict[str, str]:
    """The placeholder values of a client (`sock_port`: the listener's port, for %p)."""
    return {
        "%u": client.username or "",
        "%c": client.client_id,
        "%a": client.peer_host,
        "%r": "mqtt",
        "%P": (client.password or b"").decode("utf-8", "replace"),
        "%p": str(sock_port) if sock_port else "",
        "%C": client.cert_cn or "",
        "%d": client.cert_dn or "",
        "%m": client.mountpoint,
    }


def acl_values(client: ClientInfo, action: Action, topic: str, sock_port: int = 0) -> dict[str, str]:
    """The placeholder values of an ACL check."""
    values = client_values(client, sock_port)
    values.update({"%A": ACCESS_CODES.get(action, "2"), "%t": topic})
    return values


def expand(template: str, values: dict[str, str]) -> str:
    """`template` with every known placeholder replaced; unknown `%x` stays as written."""
    if "%" not in template:
        return template
    return _PLACEHOLDER.sub(lambda found: values.get(found.group(), found.group()), template)


def compile_template(template: str) -> Callable[[dict[str, str]], str]:
    """`expand` for one template, decided once: a template without placeholders is
    itself, one that is a single placeholder (`%u`, the usual case) a lookup."""
    if "%" not in template:
        return lambda values: template
    if _PLACEHOLDER.fullmatch(template):
        return lambda values: values.get(template, template)
    return lambda values: expand(template, values)
