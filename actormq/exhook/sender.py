"""ExHook notifications out of the worker: the gRPC calls made by the notification sender process.

A gRPC call costs the caller far more CPU than routing a message, and so
does making a protobuf message: the worker makes each notification's fields
(plain dicts, `actormq.exhook.convert`) and hands them, pickled, to the
sender process (`actormq.webhooks.sender`, kind ``grpc``) through
`ExhookSender` — a process of ours, started by the worker, on a socket in a
directory only it can reach. There `GrpcSink` makes the request and the
unary call on its own channel to the server, in per-client lanes (one
client's events stay in order), and counts what was sent, failed or dropped
per server. Answers are not read: these are notifications.
"""

from __future__ import annotations

import logging
from typing import Callable

import grpc

from actormq.exhook import convert
from actormq.exhook import exhook_pb2 as pb
from actormq import __version__
from actormq.webhooks.lanes import Lanes
from actormq.webhooks.sender import CPU_SHARE, NotificationProcess

log = logging.getLogger("actormq.exhook")

SERVICE = "/emqx.exhook.v1.HookProvider/"
LANES = 4
# what the sender's channels leave out of each call: retries (a notification that failed is
# counted, not sent again), channelz's statistics and bandwidth-delay pings (small calls):
# some 5-8 % of a call's CPU; the rest is grpcio's own (its Python layer, its C core and the
# hand-offs between its threads), whichever of its APIs makes the call
CHANNEL_OPTIONS = (("grpc.enable_retries", 0), ("grpc.enable_channelz", 0), ("grpc.http2.bdp_probe", 0))


def _identity(data: bytes) -> bytes:
    return data


def _serialized(request) -> bytes:
    return request.SerializeToString()


class ExhookSender(NotificationProcess):
    """The worker's side: notifications to ExHook servers, sent by the sender process."""

    def __init__(self, servers, queue_size: int, idle: bool = True, cpu_share: float = CPU_SHARE) -> None:
        super().__init__("grpc", queue_size, [
            [server.name, server.target, server.secure, server.tls.cacertfile, server.tls.certfile,
             server.tls.keyfile, server.timeout_s, server.node] for server in servers], idle=idle,
            cpu_share=cpu_share)
        self._targets: dict[tuple[str, str], bytes] = {}

    def put(self, server, method: str, build: Callable[[], convert.Fields], key: str) -> bool:
        """Queue the request of `method` with the fields `build()` for `server`; False when dropped."""
        target = self._targets.get((server.name, method))
        if target is None:
            target = self._targets[server.name, method] = f"{server.name} {method}".encode()
        return self.offer(target, server.name, key, build)


class _InLanes:
    """Calls made by tasks of this process, from per-client lanes (`Lanes`)."""

    def __init__(self, queue_size: int, lanes: int = LANES) -> None:
        self.lanes = Lanes(self._deliver, queue_size, lanes)
        self.counters = self.lanes.counters

    async def _deliver(self, target: str, item) -> bool:
        raise NotImplementedError

    async def drain(self, timeout_s: float) -> None:
        await self.lanes.drain(timeout_s)

    async def close(self) -> None:
        await self.lanes.close()


class LocalSender(_InLanes):
    """The same, sent by the worker itself (when the sender process could not start)."""

    credit = 1      # never refuses ahead of time: a full lane drops

    def put(self, server, method: str, build: Callable, key: str) -> bool:
        return self.lanes.put(server.name, (server, method, build), key)

    def drop(self, name: str) -> None:
        self.lanes.drop(name)

    def dropped(self, name: str, count: int) -> None:
        self.lanes.dropped(name, count)

    def refresh(self) -> None:
        """Counters are always current here."""

    async def _deliver(self, target: str, item) -> bool:
        from actormq.exhook.server import ServerDown
        server, method, build = item
        try:
            await server.call(method, convert.request(method, build(), server.meta()))
        except ServerDown:
            return False
        return True


class GrpcSink(_InLanes):
    """In the sender process: each record a unary call (request bytes as they came) to its server."""

    def __init__(self, queue_size: int, settings: list) -> None:
        self.servers = {name: (target, secure, tls, timeout_s)
                        for name, target, secure, *tls, timeout_s, _ in settings}
        self.metas = {name: pb.RequestMeta(node=node, version=__version__, sysdescr="actormq",
                                           cluster_name="actormq")
                      for name, *_, node in settings}
        # the worker's credit bounds what waits here; each lane could hold it all (see HttpSink)
        super().__init__(queue_size * LANES)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._calls: dict[bytes, tuple[str, Callable]] = {}
        self._failures = 0

    def put(self, target: bytes, key: str, body: convert.Fields) -> None:
        call = self._calls.get(target)
        if call is None:
            name, method = target.decode().split(" ", 1)
            call = self._calls[target] = (name, method, self._channel(name).unary_unary(
                SERVICE + method, request_serializer=_serialized, response_deserializer=_identity))
        self.lanes.put(call[0], (call[1], call[2], body), key)

    def _channel(self, name: str) -> grpc.aio.Channel:
        channel = self._channels.get(name)
        if channel is None:
            target, secure, tls, _ = self.servers[name]
            if secure:
                from actormq.exhook.server import channel_credentials
                channel = grpc.aio.secure_channel(target, channel_credentials(*tls), options=CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
            self._channels[name] = channel
        return channel

    async def _deliver(self, name: str, item) -> bool:
        method, call, body = item
        try:
            request = convert.request(method, body, self.metas[name])
            await call(request, timeout=self.servers[name][3])
        except grpc.aio.AioRpcError as err:
            self._failures += 1
            if self._failures in (1, 10, 100, 1000) or self._failures % 10000 == 0:
                log.warning("exhook server %s: notification not delivered (%s); %d so far", name,
                            err.code().name, self._failures)
            return False
        return True

    async def close(self) -> None:
        await super().close()
        for channel in self._channels.values():
            await channel.close()
