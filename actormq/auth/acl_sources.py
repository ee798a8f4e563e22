"""The ACL sources the `acl` provider asks in order: HTTP (`auth.http.acl_req`),
Redis (VerneMQ records), the ACL file. Each `check(client, action, topic)`
answers a `Verdict` (allow / deny, with limits) or None (ignore: ask the
next one), synchronously or as an awaitable.
"""

from __future__ import annotations

import logging

from actormq.auth.acl_file import AclFile
from actormq.auth.acl_rules import Action, ClientInfo, Permission, Rule, check_rules, rules_for
from actormq.auth.http_client import HttpClient, SourceUnavailable
from actormq.auth.http_request import RequestSpec, acl_answer
from actormq.auth.placeholders import acl_values
from actormq.auth.redis_store import RedisRecords
from actormq.auth.verdicts import Verdict

log = logging.getLogger("actormq.auth")

FILE_ALLOW = Verdict(True, source="acl.file")
FILE_DENY = Verdict(False, source="acl.file")
HTTP_ALLOW = Verdict(True, source="HTTP ACL")
HTTP_DENY = Verdict(False, source="HTTP ACL")


class FileAclSource:
    """The ACL file; the rules that apply to a client (its Who matches) are picked once
    per connection, so a check scans those few, not the whole file."""

    name = "file"

    def __init__(self, acl: AclFile) -> None:
        self.acl = acl
        self._by_client: dict[str, tuple[ClientInfo, tuple[Rule, ...], tuple[Rule, ...]]] = {}

    def check(self, client: ClientInfo, action: Action, topic: str) -> Verdict | None:
        permission = check_rules(self._rules_of(client), client, action, topic, who_checked=True)
        if permission is None:
            return None
        return FILE_ALLOW if permission is Permission.ALLOW else FILE_DENY

    def _rules_of(self, client: ClientInfo) -> tuple[Rule, ...]:
        all_rules = self.acl.rules
        known = self._by_client.get(client.client_id)
        if known is not None and known[0] is client and known[1] is all_rules:
            return known[2]
        mine = rules_for(all_rules, client)
        self._by_client[client.client_id] = (client, all_rules, mine)
        return mine

    def forget(self, client_id: str) -> None:
        self._by_client.pop(client_id, None)

    def reload(self) -> None:
        self.acl.reload()
        self._by_client.clear()


class HttpAclSource:
    name = "http"

    def __init__(self, spec: RequestSpec, client: HttpClient, deny_on_failure: bool,
                 ports: dict[str, int] | None = None) -> None:
        self.spec, self.http, self.deny_on_failure, self.ports = spec, client, deny_on_failure, ports or {}

    async def check(self, client: ClientInfo, action: Action, topic: str) -> Verdict | None:
        request = self.spec.build(acl_values(client, action, topic, self.ports.get(client.listener, 0)))
        try:
            status, body = await self.http.send(request)
        except SourceUnavailable as problem:
            log.warning("HTTP ACL for client %s: %s (%s)", client.client_id, problem,
                        "denied" if self.deny_on_failure else "next source asked")
            return HTTP_DENY if self.deny_on_failure else None
        word = acl_answer(status, body)
        return None if word == "ignore" else (HTTP_ALLOW if word == "allow" else HTTP_DENY)


class RedisAclSource:
    """A client's VerneMQ record decides; a client without a record is not this source's to judge."""

    name = "redis"

    def __init__(self, records: RedisRecords) -> None:
        self.records = records

    async def check(self, client: ClientInfo, action: Action, topic: str) -> Verdict | None:
        try:
            record = await self.records.fetch(client.mountpoint, client.client_id, client.username)
        except SourceUnavailable as problem:
            log.warning("Redis ACL for client %s: %s (denied)", client.client_id, problem)
            return Verdict(False, source="Redis ACL")
        return None if record is None else record.verdict(client, action, topic)
