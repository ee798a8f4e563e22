"""The HTTP auth provider (plugin `auth_http`), EMQX 4 `emqx_auth_http`:
`auth.http.auth_req` decides the CONNECT, `auth.http.super_req` (when set)
whether an allowed client is a superuser.

An endpoint that is down or slow fails closed: CONNACK 0x88 Server
unavailable (3.1.1: 3) once `auth.http.timeout` is spent, never "bad
password"; other clients are not held (each decision awaits on its own).
"""

from __future__ import annotations

from actormq.auth.http_client import HttpClient, RetryPolicy, SourceUnavailable
from actormq.auth.http_request import RequestSpec, auth_answer, superuser_answer
from actormq.auth.placeholders import client_values
from actormq.hooks import NEXT, OK, Error, Ok, Plugin
from actormq.transport.listeners import plan_listeners

SERVER_UNAVAILABLE = 0x88


def request_spec(config, name: str) -> RequestSpec | None:
    """The `auth.http.<name>` request of a Config; None when its url is not set."""
    url = config.get(f"auth.http.{name}.url")
    if not url:
        return None
    return RequestSpec.from_settings(name, url, config[f"auth.http.{name}.method"],
                                     config.section(f"auth.http.{name}.headers."),
                                     config[f"auth.http.{name}.params"])


def http_client(config) -> HttpClient:
    retry = RetryPolicy(config["auth.http.retry.times"], float(config["auth.http.retry.interval"]),
                        config["auth.http.retry.backoff"])
    return HttpClient(float(config["auth.http.timeout"]), config["auth.http.pool_size"], retry)


def listener_ports(config) -> dict[str, int]:
    """The configured port of each listener by name, for %p (0 = a port picked at start)."""
    return {listener.name: listener.port for listener in plan_listeners(config)}


class HttpAuthPlugin(Plugin):
    name = "auth_http"
    timeout = 3600.0  # auth.http.timeout bounds each decision; this only backs it up

    @classmethod
    def wanted(cls, config) -> bool:
        return bool(config.get("auth.http.auth_req.url"))

    def start(self) -> None:
        config = self.context.config
        self.auth_req = request_spec(config, "auth_req")
        self.super_req = request_spec(config, "super_req")
        self.http = http_client(config)
        self.ports = listener_ports(config)

    async def stop(self) -> None:
        await self.http.close()

    def on_client_authenticate(self, client):
        # the coroutine is returned unstarted: the chain runs it in a task of its own, the
        # one HttpClient.send bounds with its deadline
        return self._authenticate(client_values(client, self.ports.get(client.listener, 0)))

    async def _authenticate(self, values: dict[str, str]):
        try:
            status, body = await self.http.send(self.auth_req.build(values))
        except SourceUnavailable as problem:
            return Error(SERVER_UNAVAILABLE, f"HTTP auth: {problem}")
        answer = auth_answer(status, body)
        if answer.outcome == "ignore":
            return NEXT
        if answer.outcome == "refuse":
            return Error(answer.reason_code, f"HTTP auth answered {status}")
        if self.super_req is not None and await self._is_superuser(values):
            return Ok(superuser=True)
        return OK

    async def _is_superuser(self, values: dict[str, str]) -> bool:
        try:
            status, _body = await self.http.send(self.super_req.build(values))
        except SourceUnavailable:
            return False
        return superuser_answer(status)
