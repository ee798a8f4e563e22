"""The workloads of `actormq bench`: what `pub`, `sub` and `conn` do with the
client engine (`actormq.bench.client`), from connecting the clients to the
`Summary` they return.

`Publisher` paces one client's PUBLISH stream (rate, QoS 1/2 window, message
limit, socket write pauses); `run_pub`, `run_sub` and `run_conn` are the three
commands, each an asyncio coroutine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from actormq.bench.client import (
    TIMER_TICK, Endpoint, MqttClient, PublishTemplate, open_client, receive_maximum, subscribe,
)
from actormq.bench.connector import RawConnector
from actormq.bench.report import Progress, Summary, cpu_seconds, latency_summary
from actormq.bench.stats import DeliveryCounts, LatencyHistogram, SequenceTracker


@dataclass(frozen=True, slots=True)
class Workload:
    """What one `actormq bench` command does.

    `per_second` is the message rate of each publishing client (None: as fast
    as the socket and the QoS 1/2 window allow). `limit` caps the messages of
    each publisher; `count` stops a subscriber run once that many arrived
    (0: right after SUBACK); `idle` stops it after that many seconds without
    a message once one arrived.
    """

    clients: int = 1
    start_number: int = 0
    prefix: str = "bench"
    topic: str = "bench/%i"
    qos: int = 0
    size: int = 64
    per_second: float | None = None
    duration: float = 10.0
    window: int = 100
    limit: int = 0
    count: int | None = None
    idle: float | None = None
    concurrency: int = 50
    grace: float = 10.0
    ready_file: str | None = None
    progress: bool = True

    def indexes(self) -> range:
        return range(self.start_number + 1, self.start_number + self.clients + 1)

    def client_id(self, index: int) -> str:
        return f"{self.prefix}{index}"

    def topic_for(self, index: int) -> str:
        return self.topic.replace("%i", str(index)).replace("%c", self.client_id(index))


class Publisher:
    """Paces one client's PUBLISH stream: rate, QoS 1/2 window, limit, write pauses."""

    BATCH = 64

    def __init__(self, client: MqttClient, template: PublishTemplate, index: int,
                 work: Workload, window: int) -> None:
        self.client = client
        self.template = template
        self.index = index
        self.per_second = work.per_second
        self.window = window if work.qos else 0
        self._refill = max(1, min(self.BATCH, self.window // 4))
        self.limit = work.limit
        self.sent = 0
        self.completed = 0
        self.loop = asyncio.get_running_loop()
        self.done_sending: asyncio.Future = self.loop.create_future()
        self._started = 0.0
        self._armed = False
        client.on_complete = self._on_complete
        client.on_resume = self._wake

    def start(self, at: float) -> None:
        self._started = at
        self._pump()

    def stop(self) -> None:
        if not self.done_sending.done():
            self.done_sending.set_result(self.loop.time())

    def _on_complete(self, count: int) -> None:
        """Refill the window in batches, not one write per acknowledgement; a
        smaller refill waits one timer tick at most (waiting for more acks
        than a broker sends before it sees data from us would stall on
        Nagle's algorithm against delayed ACKs, 40 ms a round)."""
        self.completed += count
        if self.window - (self.sent - self.completed) >= self._refill:
            self._wake()
        elif not self._armed:
            self._armed = True
            self.loop.call_later(TIMER_TICK, self._pump)

    def _wake(self) -> None:
        if not self._armed:
            self._pump()

    def _pump(self) -> None:
        self._armed = False
        transport = self.client.transport
        if self.done_sending.done() or self.client.paused or transport.is_closing():
            return
        budget = self.BATCH
        if self.window:
            budget = min(budget, self.window - (self.sent - self.completed))
        if self.limit:
            budget = min(budget, self.limit - self.sent)
        if self.per_second:
            due = int((self.loop.time() - self._started) * self.per_second) + 1 - self.sent
            budget = min(budget, due)
        if budget > 0:
            transport.write(self.template.render(self.index, self.sent, budget,
                                                 time.monotonic_ns()))
            self.sent += budget
        if self.limit and self.sent >= self.limit:
            self.stop()
        else:
            self._schedule()

    def _schedule(self) -> None:
        if self.client.paused or (self.window and self.sent - self.completed >= self.window):
            return
        self._armed = True
        if self.per_second:
            # event loop timers tick in whole milliseconds: an earlier wake-up
            # would find nothing due and spin
            due_at = self._started + self.sent / self.per_second
            self.loop.call_at(max(due_at, self.loop.time() + TIMER_TICK), self._pump)
        else:
            self.loop.call_soon(self._pump)


@dataclass(slots=True)
class Fleet:
    """The clients of a run that connected, and what went wrong for the others."""

    clients: dict
    errors: list
    connect_ns: LatencyHistogram
    first_start_ns: int = 0
    last_connack_ns: int = 0

    def connect_rate(self) -> float | None:
        span = self.last_connack_ns - self.first_start_ns
        return len(self.clients) / span * 1e9 if self.clients and span > 0 else None


async def connect_all(work: Workload, endpoint: Endpoint, prepare=None) -> Fleet:
    """Connect every client of `work`, at most `work.concurrency` at a time.
    `prepare(index, client)` runs before a client connects (to set callbacks
    that must see the first packets)."""
    fleet = Fleet({}, [], LatencyHistogram())
    pending = iter(work.indexes())

    async def worker() -> None:
        for index in pending:
            started = time.monotonic_ns()
            fleet.first_start_ns = fleet.first_start_ns or started
            client = MqttClient(work.client_id(index), endpoint)
            if prepare is not None:
                prepare(index, client)
            try:
                await open_client(client)
            except ConnectionError as exc:
                fleet.errors.append(str(exc))
                continue
            fleet.last_connack_ns = time.monotonic_ns()
            fleet.connect_ns.record(fleet.last_connack_ns - started)
            fleet.clients[index] = client

    await asyncio.gather(*(worker() for _ in range(max(1, min(work.concurrency,
                                                                work.clients)))))
    return fleet


async def _keepalive(clients, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for client in clients:
            client.ping()


async def _disconnect(clients) -> None:
    for client in clients:
        client.disconnect()
    if clients:
        await asyncio.wait([c.closed for c in clients], timeout=2.0)


def _written_out(clients) -> bool:
    """Whether what the clients wrote has left them: a broker that holds a
    publisher back (backpressure) reads the rest of its messages later, and a
    message still in the client's buffer at the DISCONNECT was never sent."""
    return all(client.transport is None or client.transport.is_closing()
               or not client.transport.get_write_buffer_size() for client in clients)


async def _with_progress(progress: Progress | None, keepalive: tuple, body):
    tasks = [asyncio.ensure_future(_keepalive(*keepalive))]
    if progress is not None:
        tasks.append(asyncio.ensure_future(progress.run()))
    try:
        return await body
    finally:
        for task in tasks:
            task.cancel()


def _summary(command: str, work: Workload, endpoint: Endpoint, fleet: Fleet,
             cpu_start: float, **fields) -> Summary:
    return Summary(command=command, clients=work.clients, connected=len(fleet.clients),
                   version=endpoint.version, qos=work.qos, size=work.size,
                   connect_ms=latency_summary(fleet.connect_ns, 1_000_000),
                   cpu_s=round(cpu_seconds() - cpu_start, 3), errors=fleet.errors[:20],
                   **fields)


async def run_pub(work: Workload, endpoint: Endpoint) -> Summary:
    """Publish from every client for `work.duration` (or up to `work.limit`)."""
    cpu_start = cpu_seconds()
    fleet = await connect_all(work, endpoint)
    loop = asyncio.get_running_loop()
    publishers = [Publisher(client, PublishTemplate(work.topic_for(index), work.size, work.qos,
                                                    endpoint.version), index, work,
                            min(work.window, receive_maximum(client.connack.result())))
                  for index, client in fleet.clients.items()]
    sent = lambda: sum(p.sent for p in publishers)  # noqa: E731
    counters = (lambda: {"sent": sent(), "completed": sum(p.completed for p in publishers)}) \
        if work.qos else (lambda: {"sent": sent()})
    progress = Progress("pub", counters) if work.progress else None

    async def body() -> float:
        started = loop.time()
        for publisher in publishers:
            publisher.start(started)
        if publishers:
            await asyncio.wait([p.done_sending for p in publishers], timeout=work.duration)
        for publisher in publishers:
            publisher.stop()
        elapsed = max((p.done_sending.result() for p in publishers), default=started) - started
        await _settle(lambda: _written_out(fleet.clients.values()) and
                      (not work.qos or all(p.completed >= p.sent for p in publishers)), work.grace)
        return elapsed

    elapsed = await _with_progress(progress, (fleet.clients.values(), endpoint.keepalive / 2),
                                   body())
    await _disconnect(list(fleet.clients.values()))
    total = sent()
    return _summary("pub", work, endpoint, fleet, cpu_start, elapsed_s=round(elapsed, 3),
                    rate=total / elapsed if elapsed > 0 else None, sent=total,
                    completed=sum(p.completed for p in publishers))


async def _settle(condition, timeout: float, step: float = 0.02) -> bool:
    """Wait until `condition()` holds or `timeout` passes; return whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(step)
    return True


async def run_sub(work: Workload, endpoint: Endpoint) -> Summary:
    """Subscribe every client, then count what arrives until duration, count or idle."""
    cpu_start = cpu_seconds()
    connect_started = time.monotonic_ns()
    histogram = LatencyHistogram()
    trackers: dict[int, SequenceTracker] = {}

    def prepare(index: int, client: MqttClient) -> None:
        trackers[index] = SequenceTracker(histogram)
        client.on_publish = trackers[index].observe
        client.coalesce = work.qos == 0

    fleet = await connect_all(work, endpoint, prepare=prepare)
    for index, client in list(fleet.clients.items()):
        try:
            await subscribe(client, work.topic_for(index), work.qos, endpoint.connect_timeout)
        except ConnectionError as exc:
            fleet.errors.append(str(exc))
    trackers = [trackers[index] for index in fleet.clients]
    if work.ready_file:
        with open(work.ready_file, "w") as ready:
            ready.write(f"{len(trackers)}\n")
    received = lambda: sum(t.received for t in trackers)  # noqa: E731
    progress = Progress("sub", lambda: {"received": received()}) if work.progress else None
    await _with_progress(progress, (fleet.clients.values(), endpoint.keepalive / 2),
                         _await_traffic(work, received))
    await _disconnect(list(fleet.clients.values()))
    counts = sum((t.counts() for t in trackers), DeliveryCounts())
    first = min((t.first_ns for t in trackers if t.first_ns), default=0)
    last = max((t.last_ns for t in trackers), default=0)
    span = (last - first) / 1e9
    return _summary("sub", work, endpoint, fleet, cpu_start, elapsed_s=round(span, 3),
                    rate=counts.received / span if span > 0 else None,
                    received=counts.received, duplicates=counts.duplicates,
                    missing=counts.missing, latency_us=latency_summary(histogram),
                    connect_to_last_s=round((last - connect_started) / 1e9, 4) if last else None)


async def _await_traffic(work: Workload, received) -> None:
    """Return at the duration, at `work.count` messages, or after `work.idle` quiet seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + work.duration
    last_total, last_change = 0, loop.time()
    while loop.time() < deadline:
        total = received()
        if work.count is not None and total >= work.count:
            return
        now = loop.time()
        if total != last_total:
            last_total, last_change = total, now
        elif work.idle and total and now - last_change >= work.idle:
            return
        await asyncio.sleep(0.01 if work.count else 0.05)


async def run_conn(work: Workload, endpoint: Endpoint) -> Summary:
    """Open every connection, hold them for `work.duration`, then disconnect."""
    cpu_start = cpu_seconds()
    connector = RawConnector(endpoint, map(work.client_id, work.indexes()), work.concurrency)
    progress = Progress("conn", lambda: {"connected": len(connector.opened)}) \
        if work.progress else None
    # the first connected keep alive while the last connect (a slow broker or many clients)
    await _with_progress(progress, ((connector,), endpoint.keepalive / 2),
                         asyncio.to_thread(connector.run))
    if work.ready_file:
        with open(work.ready_file, "w") as ready:
            ready.write(f"{len(connector.opened)}\n")
    await _with_progress(None, ((connector,), endpoint.keepalive / 2),
                         asyncio.sleep(work.duration))
    connector.close()
    fleet = Fleet(dict(enumerate(connector.opened)), connector.errors, connector.connect_ns,
                  connector.first_start_ns, connector.last_connack_ns)
    return _summary("conn", work, endpoint, fleet, cpu_start,
                    elapsed_s=round((fleet.last_connack_ns - fleet.first_start_ns) / 1e9, 3),
                    rate=fleet.connect_rate())
