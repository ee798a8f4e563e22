"""The notification sender process keeps to its CPU budget: offered far more `on_publish`
records than it can send, a sender that may run on one core only (so no core is ever to
spare) uses about `cpu_share` of it, still delivers to a real HTTP endpoint, and what it
could not take is dropped and counted."""

from __future__ import annotations

import asyncio
import os
import time

import psutil
import pytest

from actormq.webhooks.sender import SenderProcess
from tests.webhook_endpoint import Endpoint

pytestmark = pytest.mark.timeout(60)

SHARE = 0.05


def started_on_one_core(cpu_share: float) -> SenderProcess:
    """A sender process that may run on one core only (it inherits the affinity it starts with)."""
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(everywhere)})
    try:
        return SenderProcess(queue_size=500, max_connections=4, keepalive_s=60.0, cpu_share=cpu_share)
    finally:
        os.sched_setaffinity(0, everywhere)


async def flood(sender: SenderProcess, url: str, seconds: float) -> int:
    """Offer records far faster than the sender can POST them, for `seconds`; how many."""
    offered = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for number in range(40):
            sender.send(url, {"vernemq-hook": "on_publish"}, lambda: b'{"qos":0}', key=f"c{number % 8}")
            offered += 1
        await asyncio.sleep(0.004)
    return offered


async def measure(endpoint: Endpoint, cpu_share: float) -> tuple[float, int, dict]:
    """The sender's CPU share over 3 s of flooding after 2 s of warming up, what the endpoint
    received in them, and the sender's counters."""
    sender = started_on_one_core(cpu_share)
    try:
        assert await sender.ready()
        process = psutil.Process(sender._process.pid)
        await flood(sender, endpoint.url, 2.0)     # connections made, its first POSTs' work done
        cpu_before, at, received = sum(process.cpu_times()[:2]), time.monotonic(), len(endpoint.requests)
        await flood(sender, endpoint.url, 3.0)
        share = (sum(process.cpu_times()[:2]) - cpu_before) / (time.monotonic() - at)
        delivered = len(endpoint.requests) - received
    finally:
        await sender.close()
    return share, delivered, dict(sender.counters)


@pytest.fixture(scope="module")
def endpoint():
    running = Endpoint().start()
    yield running
    running.stop()


def test_a_sender_without_a_core_to_spare_keeps_to_its_share_and_counts_what_it_dropped(endpoint):
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("needs CPU affinity (Linux)")
    share, delivered, counters = asyncio.run(measure(endpoint, SHARE))
    assert share <= SHARE * 1.5 + 0.01, f"the sender used {share:.3f} of its core"
    assert delivered > 0
    assert counters[endpoint.url, "dropped"] > 1000
    assert counters[endpoint.url, "sent"] >= delivered

