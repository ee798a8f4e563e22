"""What an idle broker runs: at -w 1 one process (the worker in the node's
process), with --supervised the node and one worker (no resource tracker), the
node's main thread asleep until a worker or a signal wakes it; a
worker without the libraries of features that are not configured, the
management API's aiohttp loaded by the node at the API's first request; and
`actormq bench conn --source-address`."""

from __future__ import annotations

import re
import time

import psutil
import pytest

from tests.integration.brokers import actormq_only, run_cli
from tests.integration.mgmtapi import get

# shared objects only these libraries load (aiohttp's parser, yarl and multidict under it)
HTTP_LIBRARIES = ("aiohttp", "multidict", "yarl")


def _loaded(pid: int, names: tuple[str, ...]) -> set[str]:
    """Which of `names` appear in the paths of the files the process has mapped."""
    paths = [region.path for region in psutil.Process(pid).memory_maps()]
    return {name for name in names if any(f"/{name}/" in path for path in paths)}


def _peers(log: str) -> list[str]:
    return re.findall(r"client fromsrc-\d connected from ([0-9.]+):\d+", log)


@pytest.fixture
def idle_broker(make_broker):
    actormq_only("the processes and imports of actormq itself")
    return make_broker()


@pytest.fixture
def supervised_broker(make_broker):
    actormq_only("the processes and imports of actormq itself")
    return make_broker("--supervised")


def test_an_idle_broker_at_w1_is_one_process(idle_broker):
    node = psutil.Process(idle_broker.proc.pid)
    assert node.children(recursive=True) == []
    assert " ".join(node.cmdline()).strip() == "actormq: node"
    assert f"workers: 1 (pids {node.pid}, in the node's own process)" in idle_broker.stdout()


def test_a_supervised_idle_broker_at_w1_is_its_node_and_one_worker(supervised_broker):
    node = psutil.Process(supervised_broker.proc.pid)
    children = node.children(recursive=True)
    assert [" ".join(child.cmdline()).strip() for child in children] == ["actormq: worker 0"]
    assert f"workers: 1 (pids {children[0].pid})" in supervised_broker.stdout()


def _voluntary_switches(pid: int) -> int:
    with open(f"/proc/{pid}/task/{pid}/status") as status:
        return int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status.read(), re.M).group(1))


def test_the_supervising_node_sleeps_while_its_workers_run(supervised_broker):
    pid = supervised_broker.proc.pid
    before = _voluntary_switches(pid)
    time.sleep(1.0)     # a node that looked at its flags on a timer woke 5 times meanwhile
    assert _voluntary_switches(pid) - before < 2
    assert psutil.Process(pid).is_running()


def test_the_one_process_loads_the_http_library_at_the_first_api_request(idle_broker):
    assert _loaded(idle_broker.proc.pid, HTTP_LIBRARIES) == set()
    assert get(idle_broker, "/api/v4/brokers")["data"][0]["node_status"] == "Running"
    assert "aiohttp" in _loaded(idle_broker.proc.pid, HTTP_LIBRARIES)


def test_the_worker_loads_no_http_library_and_the_node_loads_it_at_the_first_api_request(
        supervised_broker):
    worker = psutil.Process(supervised_broker.proc.pid).children()[0]
    assert _loaded(worker.pid, HTTP_LIBRARIES) == set()
    assert _loaded(supervised_broker.proc.pid, HTTP_LIBRARIES) == set()
    assert get(supervised_broker, "/api/v4/brokers")["data"][0]["node_status"] == "Running"
    assert "aiohttp" in _loaded(supervised_broker.proc.pid, HTTP_LIBRARIES)
    assert _loaded(worker.pid, HTTP_LIBRARIES) == set()


def test_bench_conn_connects_from_the_source_address_it_is_given(idle_broker):
    result = run_cli("bench", "conn", "-p", str(idle_broker.port), "-c", "3", "--prefix", "fromsrc-",
                     "--source-address", "127.0.0.3", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    assert '"connected": 3' in result.stdout
    deadline = time.monotonic() + 5     # connection log lines are written in batches
    while len(peers := _peers(idle_broker.log())) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert peers == ["127.0.0.3"] * 3


def test_bench_conn_says_when_it_cannot_bind_the_source_address(idle_broker):
    result = run_cli("bench", "conn", "-p", str(idle_broker.port), "-c", "1",
                     "--source-address", "192.0.2.1", "--json", "--quiet")
    assert result.returncode == 1
    assert "cannot bind 192.0.2.1" in result.stdout
