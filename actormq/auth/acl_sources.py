"""The ACL sources the `acl` provider asks in order: HTTP (`auth.http.acl_req`),
Redis (VerneMQ records), the ACL file. Each `check(client, action, topic)`
answers a `Verdict` (allow / deny, with limits) or None (ignore: ask the
next one), synchronously or as an awaitable.
"""

from __future__ import annotations

import logging

from actormq.auth.acl_file import AclFile
from actormq.auth.acl_rules import Action, ClientInfo, Permission
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
    name = "file"

    def __init__(self, acl: AclFile) -> None:
        self.acl = acl

    def check(self, client: ClientInfo, action: Action, topic: str) -> Verdict | None:
        permission = self.acl.check(client, action, topic)
        if permission is None:
            return None
        return FILE_ALLOW if permission is Permission.ALLOW else FILE_DENY

    def reload(self) -> None:
        self.acl.reload()


class HttpAclSource:
    name = "http"

    def __init__(self, spec: RequestSpec, client: HttpClient, deny_on_failure: bool, sock_port: int = 0) -> None:
        self.spec, self.http, self.deny_on_failure, self.sock_port = spec, client, deny_on_failure, sock_port

    async def check(self, client: ClientInfo, action: Action, topic: str) -> Verdict | None:
        request = self.spec.build(acl_values(client, action, topic, self.sock_port))
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
