"""The ExHook servers of scripts/bench_webhooks.py, started as the bench starts them: one that
loads `message.publish`, and one that loads no hook at all (the scenario of gRPC in the worker
with nothing hooked), asked `OnProviderLoaded` by actormq's own client."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from actormq.exhook.plugin import plugin_class
from actormq.exhook.server import ExhookServer
from tests.exhook_provider import _free_port as free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_webhooks.py"


@pytest.fixture
def bench_server(tmp_path):
    started = []

    def start(hook: str) -> str:
        port = free_port()
        counter = tmp_path / f"received-{port}"
        counter.write_bytes(bytes(8))
        started.append(subprocess.Popen([sys.executable, str(SCRIPT), "--serve-grpc", str(port), hook, str(counter)],
                                        cwd=SCRIPT.parents[1]))
        return f"http://127.0.0.1:{port}"
    yield start
    for process in started:
        process.terminate()
        process.wait(10)


def loaded(url: str) -> ExhookServer:
    server = ExhookServer("bench", url, 20.0, None)
    for _ in range(200):        # the server process needs a moment to listen
        if server.load_blocking():
            return server
        time.sleep(0.1)
    raise AssertionError(f"the bench's ExHook server at {url} never answered")


def hooked_methods(server: ExhookServer) -> set[str]:
    return {name for name in vars(plugin_class(set(server.hooks))) if name.startswith("on_")}


def test_the_server_loading_no_hook_gets_nothing_hooked(bench_server):
    server = loaded(bench_server("none"))
    assert server.loaded and server.hooks == {}
    assert hooked_methods(server) == set()


def test_the_message_publish_server_gets_message_publish_hooked(bench_server):
    server = loaded(bench_server("message.publish"))
    assert server.hooks == {"message.publish": ()}
    assert hooked_methods(server) == {"on_message_publish"}
