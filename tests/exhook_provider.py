"""A real ExHook HookProvider gRPC server for tests (grpc.aio, in its own process), written
against the service in actormq/exhook/exhook.proto as a user's server would be.

It loads the hooks given to it, denies the login of username "bad", rewrites
messages published to "t/rewrite" to "t/rewritten", drops "t/drop" (header
allow_publish = "false"), denies publishing to "acl/denied", answers a message
to "slow/..." with payload "<ms>:..." after that many milliseconds, and records
every request as one JSON line {"rpc": name, "request": ..., "in_flight": calls
of that rpc being answered} in a file the test reads.
Run as `python -m tests.exhook_provider PORT HOOKS_JSON LOG_FILE [TLS_JSON]`; `ProviderServer`
does that. TLS_JSON ([certfile, keyfile, client CA file or ""]) serves TLS, requiring a client
certificate signed by that CA when one is given.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

from actormq.exhook import exhook_pb2 as pb
from actormq.exhook import exhook_pb2_grpc as pb_grpc

STOP = pb.ValuedResponse.STOP_AND_RETURN
IGNORE = pb.ValuedResponse.IGNORE


class Provider(pb_grpc.HookProviderServicer):
    def __init__(self, hooks: dict[str, list[str]], log_file: str) -> None:
        self.hooks = hooks
        self.log = open(log_file, "a", buffering=1)
        self.publishing = 0

    def _seen(self, name, request, in_flight: int = 1):
        self.log.write(json.dumps({"rpc": name, "request": MessageToDict(request), "in_flight": in_flight})
                       + "\n")

    async def OnProviderLoaded(self, request, context):
        self._seen("OnProviderLoaded", request)
        return pb.LoadedResponse(hooks=[pb.HookSpec(name=n, topics=t) for n, t in self.hooks.items()])

    async def OnProviderUnloaded(self, request, context):
        self._seen("OnProviderUnloaded", request)
        return pb.EmptySuccess()

    async def OnClientAuthenticate(self, request, context):
        self._seen("OnClientAuthenticate", request)
        return pb.ValuedResponse(type=STOP, bool_result=request.clientinfo.username != "bad")

    async def OnClientCheckAcl(self, request, context):
        self._seen("OnClientCheckAcl", request)
        if request.topic.startswith("acl/"):
            return pb.ValuedResponse(type=STOP, bool_result=request.topic != "acl/denied")
        return pb.ValuedResponse(type=IGNORE)

    async def OnMessagePublish(self, request, context):
        self.publishing += 1
        try:
            self._seen("OnMessagePublish", request, self.publishing)
            if request.message.topic.startswith("slow/"):
                await asyncio.sleep(int(request.message.payload.split(b":")[0]) / 1000)
            return self._published(request)
        finally:
            self.publishing -= 1

    def _published(self, request):
        message = pb.Message()
        message.CopyFrom(request.message)
        if message.topic == "t/rewrite":
            message.topic = "t/rewritten"
        elif message.topic == "t/drop":
            message.headers["allow_publish"] = "false"
        return pb.ValuedResponse(type=pb.ValuedResponse.CONTINUE, message=message)


def _notification(name):
    async def handler(self, request, context):
        self._seen(name, request)
        return pb.EmptySuccess()
    return handler


for _name in ("OnClientConnect", "OnClientConnack", "OnClientConnected", "OnClientDisconnected",
              "OnClientSubscribe", "OnClientUnsubscribe", "OnSessionCreated", "OnSessionSubscribed",
              "OnSessionUnsubscribed", "OnSessionResumed", "OnSessionDiscarded", "OnSessionTakeovered",
              "OnSessionTerminated", "OnMessageDelivered", "OnMessageDropped", "OnMessageAcked"):
    setattr(Provider, _name, _notification(_name))


async def serve(port: int, hooks: dict[str, list[str]], log_file: str, tls: list[str] | None = None) -> None:
    server = grpc.aio.server()
    pb_grpc.add_HookProviderServicer_to_server(Provider(hooks, log_file), server)
    if tls:
        certfile, keyfile, client_ca = tls
        credentials = grpc.ssl_server_credentials(
            [(Path(keyfile).read_bytes(), Path(certfile).read_bytes())],
            root_certificates=Path(client_ca).read_bytes() if client_ca else None,
            require_client_auth=bool(client_ca))
        server.add_secure_port(f"127.0.0.1:{port}", credentials)
    else:
        server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


class ProviderServer:
    """The provider in a child process on a loopback port (the same port again after a kill)."""

    def __init__(self, hooks: dict[str, list[str]], log_file: Path, port: int = 0,
                 tls: tuple[str, str, str] | None = None) -> None:
        self.hooks = hooks
        self.log_file = Path(log_file)
        self.port = port or _free_port()
        self.tls = tls
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> "ProviderServer":
        root = Path(__file__).resolve().parent.parent
        tls = [json.dumps([str(part) for part in self.tls])] if self.tls else []
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.exhook_provider", str(self.port),
                                      json.dumps(self.hooks), str(self.log_file), *tls],
                                     cwd=root, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "serving"
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def requests(self, name: str) -> list[dict]:
        return [line["request"] for line in self._lines(name)]

    def most_in_flight(self, name: str) -> int:
        """The most calls of `name` the server was answering at once."""
        return max((line["in_flight"] for line in self._lines(name)), default=0)

    def _lines(self, name: str) -> list[dict]:
        if not self.log_file.exists():
            return []
        lines = [json.loads(line) for line in self.log_file.read_text().splitlines() if line]
        return [line for line in lines if line["rpc"] == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.requests(name)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} x {name}, got {len(self.requests(name))}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3],
                      json.loads(sys.argv[4]) if len(sys.argv) > 4 else None))
