"""A real HTTP endpoint for webhook tests: an aiohttp server on a free loopback port,
run in its own thread, that records every request and answers from a script.

`Endpoint.answer(hook, body_dict, status=200, headers={}, delay=0)` sets the
answer to a hook (default: `{"result": "ok"}` for auth_on_*, `{}` otherwise);
`respond(hook, body)` may answer per request; `requests` lists (headers, parsed JSON body)
in arrival order; `wait_for(n)`
waits until n requests arrived. Also serves EMQX web hook POSTs (any path).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Scripted:
    body: object
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


def running_endpoint(respond):
    """A started Endpoint answering with `respond(hook, body)` (a pytest fixture's body:
    yields it, stops it after)."""
    server = Endpoint().start()
    server.respond = respond
    yield server
    server.stop()


class Endpoint:
    def __init__(self) -> None:
        self.requests: list[tuple[dict, object]] = []
        self.script: dict[str, Scripted] = {}
        self.respond = None     # optional (hook, body) -> Scripted | None, asked before `script`
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, hook: str, body: object = None, status: int = 200, headers: dict | None = None,
               delay: float = 0.0, raw: bytes | None = None) -> None:
        self.script[hook] = Scripted(body, status, headers or {}, delay, raw)

    def start(self) -> "Endpoint":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def hooks(self) -> list[str]:
        with self._lock:
            return [headers.get("vernemq-hook", "") for headers, _ in self.requests]

    def bodies(self, hook: str) -> list:
        with self._lock:
            return [body for headers, body in self.requests if headers.get("vernemq-hook", "") == hook]

    def wait_for(self, count: int, timeout: float = 10.0, hook: str | None = None) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = [r for r in self.requests if hook is None or r[0].get("vernemq-hook", "") == hook]
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"expected {count} requests{' on ' + hook if hook else ''}, got {len(got)}: "
                             f"{self.hooks()}")

    def wait_body(self, hook: str, predicate, timeout: float = 10.0) -> dict:
        """The first body of `hook` for which `predicate(body)` is true, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in self.bodies(hook):
                if predicate(body):
                    return body
            time.sleep(0.01)
        raise AssertionError(f"no {hook} body matched; got {self.bodies(hook)}")

    async def _handle(self, request: web.Request) -> web.Response:
        hook = request.headers.get("vernemq-hook", "")
        data = await request.read()
        with self._lock:
            self.requests.append((dict(request.headers), json.loads(data) if data else None))
        body_in = self.requests[-1][1]
        scripted = self.respond(hook, body_in) if self.respond else None
        if scripted is None:
            scripted = self.script.get(hook)
        if scripted is None:
            default = {"result": "ok"} if hook.startswith("auth_on_") else {}
            scripted = Scripted(default)
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        body = scripted.raw if scripted.raw is not None else json.dumps(scripted.body).encode()
        return web.Response(body=body, status=scripted.status, headers=scripted.headers,
                            content_type="application/json")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
