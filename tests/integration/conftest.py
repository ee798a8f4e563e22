"""Fixtures of the integration tests: a real broker process per test or per module.

`start_broker(tmp_path, *args, settings={...}, workers=1)` (from `brokers.py`)
runs `python -m actormq run --port 0 ...` from the repo root and reads the
bound port from its banner; the fixtures below wrap it:

- `broker`: a fresh broker with default settings, stopped (exit code 0
  required) after the test;
- `shared_broker`: one broker per module for tests that need no isolation
  (they use unique client ids and topics: `clients.unique()`);
- `make_broker(settings=..., workers=...)`: a factory for tests that need
  their own settings; every broker it starts is stopped after the test.

Developer aid: `ACTORMQ_TEST_BROKER=mosquitto` runs the same tests against
Mosquitto 2.x (`/usr/sbin/mosquitto`, Debian package `mosquitto`) with a
generated config (listener on 127.0.0.1, anonymous access, persistence in the
test's tmp dir). That checks the tests themselves against a reference broker
where the behaviour is standard MQTT; tests of actormq-only behaviour or
settings without a Mosquitto equivalent are skipped as "actormq-specific":

    ACTORMQ_TEST_BROKER=mosquitto .venv/bin/python -m pytest tests/integration -q
"""

from __future__ import annotations

import itertools

import pytest

from tests.integration import clients, rawclient
from tests.integration.brokers import Broker, reference_broker, start_broker

__all__ = ["start_broker", "Broker"]


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: an integration test that takes more than 5 seconds")


def pytest_collection_modifyitems(items) -> None:
    """A test here runs real processes on a shared machine: one that fails is
    run once more (pytest-rerunfailures); it fails only if it fails twice, and
    every rerun is listed as RERUN in the summary."""
    for item in items:
        if "integration" in item.path.parts and item.get_closest_marker("flaky") is None:
            item.add_marker(pytest.mark.flaky(reruns=1))


def pytest_report_header(config) -> str:
    return f"integration broker: {reference_broker() or 'actormq (python -m actormq run)'}"


def _close_clients() -> None:
    clients.close_all()
    rawclient.close_all()


@pytest.fixture(autouse=True)
def _close_clients_after_test():
    yield
    _close_clients()


@pytest.fixture
def make_broker(tmp_path):
    """start_broker bound to this test's tmp dir; stops every broker it started."""
    started: list[Broker] = []
    counter = itertools.count()

    def make(*args: str, settings: dict | None = None, workers: int = 1) -> Broker:
        broker = start_broker(tmp_path / f"broker{next(counter)}", *args,
                              settings=settings, workers=workers)
        started.append(broker)
        return broker

    yield make
    _close_clients()
    for broker in started:
        broker.stop()


@pytest.fixture
def broker(make_broker) -> Broker:
    return make_broker()


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    broker = start_broker(tmp_path_factory.mktemp("shared"))
    yield broker
    _close_clients()
    broker.stop()
