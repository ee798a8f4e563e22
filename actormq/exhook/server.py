"""One ExHook server: the gRPC channel to a user's HookProvider, what it loaded, its reconnects.

`ExhookServer(name, url, ...)` owns the channel (grpc.aio; TLS when the URL
is https), the hooks and topic filters the server named in its
`OnProviderLoaded` answer, and whether it is up. `load_blocking()` asks it
once at start with a plain (blocking) channel, before the worker serves
clients, so that only the points the server wants get hooked; `start()`
opens the asyncio channel and, while the server is down, retries
`OnProviderLoaded` every `auto_reconnect` seconds. `call(method, request)`
awaits one RPC within the request timeout and raises `ServerDown` on any
failure (the caller applies `request_failed_action`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc

from actormq import __version__
from actormq.exhook import exhook_pb2 as pb
from actormq.exhook import exhook_pb2_grpc as pb_grpc
from actormq.transport.topics import matches

log = logging.getLogger("actormq.exhook")

_STARTED = time.time()


class ServerDown(Exception):
    """The server could not be asked (down, timed out, or answered with an error)."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cacertfile: str = ""
    certfile: str = ""
    keyfile: str = ""


def _read(path: str) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as file:
        return file.read()


def channel_credentials(cacertfile: str = "", certfile: str = "", keyfile: str = "") -> grpc.ChannelCredentials:
    """TLS to a server: verified with `cacertfile` (else the system's CAs), a client certificate
    when `certfile` is given."""
    return grpc.ssl_channel_credentials(_read(cacertfile), _read(keyfile), _read(certfile))


def broker_info() -> pb.BrokerInfo:
    now = datetime.datetime.now(datetime.timezone.utc)
    return pb.BrokerInfo(version=__version__, sysdescr="actormq",
                         uptime=str(int((time.time() - _STARTED) * 1000)),
                         datetime=now.strftime("%Y-%m-%d %H:%M:%S"))


class ExhookServer:
    """A HookProvider server and what it asked for."""

    def __init__(self, name: str, url: str, timeout_s: float, reconnect_s: float | None,
                 tls: TlsFiles = TlsFiles(), node: str = "", publish_waits: bool = True) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected http://host:port or https://host:port, got {url!r}")
        self.name = name
        self.url = url
        self.target = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self.secure = parts.scheme == "https"
        self.tls = tls
        self.timeout_s = timeout_s
        self.reconnect_s = reconnect_s
        self.node = node
        self.publish_waits = publish_waits      # message.publish a decision (EMQX) or a notification
        self._meta: pb.RequestMeta | None = None
        self.hooks: dict[str, tuple[str, ...]] = {}   # hook name -> topic filters ("" = all)
        self.loaded = False     # answered OnProviderLoaded once: until then it may want any hook
        self.up = False
        self.unsent = 0         # notifications dropped for want of the sender's credit, not yet
        #                         counted by the notifier (`ExhookPlugin.count_unsent`)
        self.on_loaded: list = []   # called (no arguments) when what it wants may have changed
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.HookProviderStub | None = None
        self._task: asyncio.Task | None = None

    def _credentials(self) -> grpc.ChannelCredentials:
        return channel_credentials(self.tls.cacertfile, self.tls.certfile, self.tls.keyfile)

    def _loaded_request(self) -> pb.ProviderLoadedRequest:
        return pb.ProviderLoadedRequest(broker=broker_info(), meta=self.meta())

    def meta(self) -> pb.RequestMeta:
        if self._meta is None:
            self._meta = pb.RequestMeta(node=self.node, version=__version__, sysdescr="actormq",
                                        cluster_name="actormq")
        return self._meta

    def _loaded(self, response: pb.LoadedResponse) -> None:
        for changing in self.on_loaded:
            changing()
        self.hooks = {spec.name: tuple(spec.topics) for spec in response.hooks}
        self.loaded = self.up = True
        log.info("exhook server %s (%s) loaded: %s", self.name, self.url,
                 ", ".join(f"{name}{list(topics) if topics else ''}" for name, topics in self.hooks.items())
                 or "no hooks")

    def load_blocking(self) -> bool:
        """Ask OnProviderLoaded once with a blocking channel; False (logged) if the server is down."""
        channel = (grpc.secure_channel(self.target, self._credentials()) if self.secure
                   else grpc.insecure_channel(self.target))
        try:
            stub = pb_grpc.HookProviderStub(channel)
            self._loaded(stub.OnProviderLoaded(self._loaded_request(), timeout=self.timeout_s))
            return True
        except grpc.RpcError as err:
            log.error("exhook server %s (%s) is not available at start (%s); %s", self.name, self.url,
                      err.code().name if hasattr(err, "code") else err, self._retry_text())
            return False
        finally:
            channel.close()

    def _retry_text(self) -> str:
        return (f"retrying every {self.reconnect_s:g} s" if self.reconnect_s
                else "not retried (exhook.auto_reconnect = false)")

    async def start(self) -> None:
        self._channel = (grpc.aio.secure_channel(self.target, self._credentials()) if self.secure
                         else grpc.aio.insecure_channel(self.target))
        self._stub = pb_grpc.HookProviderStub(self._channel)
        if self.reconnect_s:
            self._task = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._channel is not None:
            if self.up:
                try:
                    await self._stub.OnProviderUnloaded(pb.ProviderUnloadedRequest(meta=self.meta()),
                                                        timeout=min(self.timeout_s, 1.0))
                except grpc.RpcError:
                    pass
            await self._channel.close()

    async def _reconnect_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reconnect_s)
            if self.up:
                continue
            try:
                self._loaded(await self._stub.OnProviderLoaded(self._loaded_request(), timeout=self.timeout_s))
            except grpc.RpcError:
                continue
            log.info("exhook server %s (%s) is back", self.name, self.url)

    def wants(self, hook: str, topic: str | None = None) -> bool:
        """Whether the server loaded `hook` (and, for message hooks, a filter matches `topic`).
        A server that never answered OnProviderLoaded wants every hook: its decisions follow
        request_failed_action and its notifications are dropped and counted until it loads."""
        if not self.loaded:
            return True
        topics = self.hooks.get(hook)
        if topics is None:
            return False
        return not topics or topic is None or any(matches(f, topic) for f in topics)

    async def call(self, method: str, request):
        """One RPC within the timeout; ServerDown on any failure (marks the server down if it
        could not be reached)."""
        if not self.up or self._stub is None:
            raise ServerDown(f"exhook server {self.name} is down")
        try:
            return await getattr(self._stub, method)(request, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                self._went_down(err)
            raise ServerDown(f"exhook server {self.name}: {method}: {err.code().name} {err.details()}") from None

    def _went_down(self, err: grpc.aio.AioRpcError) -> None:
        if self.up and err.code() is grpc.StatusCode.UNAVAILABLE:
            self.up = False
            log.error("exhook server %s (%s) went down (%s); %s", self.name, self.url, err.details(),
                      self._retry_text())
