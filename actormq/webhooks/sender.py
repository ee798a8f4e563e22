"""The notification sender: a process of its own that sends a worker's notifications.

HTTP and gRPC cost far more CPU than routing a message, so a worker does not
send notifications itself: `NotificationProcess` (in the worker) starts
``python -m actormq.webhooks.sender`` and hands it each notification over a
ZeroMQ PAIR socket without ever waiting (a process of ours, started by the
worker, on a socket in a directory only it can reach: batches are
pickles). The notifications handed over within `HAND_OVER_DELAY` (20 ms)
go out together, as one ZeroMQ message: the pickled list of their records
(target, key, body; the body is bytes, or what the sender makes the body
of, such as a VerneMQ event's captured fields): at a high event rate the
worker pays one send and one pickling per 20 ms, not one per event or per
loop turn (each send also wakes ZeroMQ's I/O thread and the sender).
Flow control is by credit: the worker may hand over `queue_size`
notifications the sender has not finished; the sender returns credit for
what it finished every 50 ms (when it finished any); without credit an event
is dropped and counted before its body is built, so a sender that cannot
keep up costs the worker next to nothing. The worker takes the sender's
reports when they come (its loop watches the socket), not by polling: while
the credit is spent the worker's loop has no timer of the sender's, so its
turns are the ones its clients' reads make, as without a hook.

What the sender does with a record is its *kind*: ``http`` POSTs it with the
keep-alive pool of `actormq.webhooks.keepalive` and the per-client lanes of
`actormq.webhooks.http.Notifier`
(`HttpSender`, for the VerneMQ webhooks and the EMQX web hook); ``grpc``
makes a unary call to an ExHook server (`actormq.exhook.sender`). The
sender reports its counters back once a second and exits when its worker
is gone or says stop. Once it is up it runs below the broker
(`lower_priority`): at Linux's SCHED_IDLE policy, which runs it only on a
CPU that has nothing else to run and lets any other task that wakes take
that CPU at once (nice alone does not: a nice 19 task keeps the CPU for its
time slice, and with autogroups nice only counts against the processes of
its own session); and at nice `SENDER_NICE` unless configured, which is
what remains where SCHED_IDLE is refused. Never a real-time policy, even
when the broker has one: notifications are best effort and must never take
the CPU the message path needs; what the sender cannot keep up with is
dropped and counted. Nor does it fill every idle moment of a busy machine:
its deliveries keep to a CPU budget (`actormq.webhooks.budget`, `cpu_share`
of each core while the machine has no core to spare).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import pickle
import subprocess
import sys
from collections import Counter
from typing import Any, Callable, Mapping

import orjson
import zmq
import zmq.asyncio

from actormq import tempdirs
from actormq.eventloop import new_event_loop
from actormq.gctune import tune_gc
from actormq.webhooks.budget import budget_for

log = logging.getLogger("actormq.webhooks")

STOP = b"stop"
_PICKLE = 5
REPORT_INTERVAL = 1.0
CREDIT_INTERVAL = 0.05
HAND_OVER_DELAY = 0.02      # s the notifications of a few loop turns wait to go out together
SENDER_NICE = 19
CPU_SHARE = 0.05        # of each core, while the machine is busy (`webhooks.sender_cpu_share`)
SINKS = {"http": "actormq.webhooks.sender:HttpSink", "grpc": "actormq.exhook.sender:GrpcSink"}


class NotificationProcess:
    """The worker's side: starts the sender process and hands it notifications."""

    def __init__(self, kind: str, queue_size: int, settings: Any, nice: int = SENDER_NICE,
                 idle: bool = True, cpu_share: float = CPU_SHARE) -> None:
        self._dir = tempdirs.make("notify")
        address = f"ipc://{self._dir}/sender"
        self._context = zmq.Context.instance()
        self._socket = self._context.socket(zmq.PAIR)
        self._socket.setsockopt(zmq.SNDHWM, 1000)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(address)
        self._reported: Counter[tuple[str, str]] = Counter()
        self._dropped_here: dict[str, int] = {}
        self.credit = queue_size    # notifications the sender can still take (it returns credit)
        self._watched: int | None = None    # the socket's file descriptor, once the loop watches it
        self._batch: list[bytes] = []
        self._batch_names: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        command = [sys.executable, "-m", "actormq.webhooks.sender", address, str(os.getpid()),
                   str(queue_size), kind, orjson.dumps(settings).decode(), str(nice), "idle" if idle else "nice",
                   repr(cpu_share)]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    @staticmethod
    def on_spent(spent: bool) -> None:
        """Told True when the credit runs out, False when some comes back. A plugin sets its
        own: its stand-ins (`actormq.hooks.standin`) count its events dropped meanwhile, its
        hooks not called."""

    async def ready(self, timeout_s: float = 10.0) -> bool:
        """Wait for the sender's first report (it is connected); False if it never came."""
        loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if self._socket.poll(0):
                self.refresh()
                self._watched = self._socket.get(zmq.FD)
                loop.add_reader(self._watched, self.refresh)
                return True
            if self._process.poll() is not None:
                break
            await asyncio.sleep(0.02)
        log.error("the notification sender did not start; notifications are sent by the worker")
        return False

    def offer(self, target: bytes, name: str, key: str, payload: Callable[[], Any]) -> bool:
        """Hand one notification for `target` (counted under `name`) to the sender, with the
        next ones of these 20 ms; False (counted) when the sender is that far behind.
        `payload()` makes the record's body (bytes, or what the sink makes the body of).

        Past the credit the sender gave, the event is dropped before its body is even built."""
        if self.credit <= 0:
            self.drop(name)
            return False
        return self.hand_over(target, name, key, payload())

    def hand_over(self, target: bytes, name: str, key: str, body: Any) -> bool:
        """`offer` of a body that is made already (a tuple of captured fields costs nothing
        to make): it is pickled with the rest of its batch."""
        credit = self.credit
        if credit <= 0:
            self.drop(name)
            return False
        self.credit = credit - 1
        if credit == 1:
            self.on_spent(True)
        batch = self._batch
        if not batch:
            self._loop.call_later(HAND_OVER_DELAY, self._flush)
        batch.append((target, key, body))
        self._batch_names.append(name)
        return True

    def drop(self, name: str) -> None:
        """Count a notification for `name` dropped: no credit (callers that see `credit` <= 0
        call this before making anything), or its target is known to be down."""
        self._dropped_here[name] = self._dropped_here.get(name, 0) + 1

    def dropped(self, name: str, count: int) -> None:
        """Count `count` notifications for `name` dropped for want of credit (callers that
        counted them themselves, see `VmqWebhooks.unsent`)."""
        self._dropped_here[name] = self._dropped_here.get(name, 0) + count

    def _flush(self) -> None:
        batch, names = self._batch, self._batch_names
        if not batch:
            return
        self._batch, self._batch_names = [], []
        try:
            self._socket.send(pickle.dumps(batch, _PICKLE), zmq.NOBLOCK)
        except zmq.Again:
            for name in names:
                self._dropped_here[name] = self._dropped_here.get(name, 0) + 1
        # a send may take in the signal of a report that came meanwhile: the loop would not
        # see it (ZeroMQ signals a socket's descriptor once, not while a message waits)
        self.refresh()

    def refresh(self) -> None:
        """Take the sender's reports: credit returned, its counters (sent, failed, its drops)
        (the loop calls it when the socket's descriptor signals; it asks the socket, which
        also clears the signal)."""
        socket = self._socket
        spent = self.credit <= 0
        while not socket.closed and socket.get(zmq.EVENTS) & zmq.POLLIN:
            report = orjson.loads(socket.recv())
            self.credit += report.get("credit", 0)
            if "counters" in report:
                self._reported = Counter({tuple(key.split(" ", 1)): value
                                          for key, value in report["counters"].items()})
        if spent and self.credit > 0:
            self.on_spent(False)

    def grant(self, credit: int) -> None:
        """Set the credit as a report would (benchmarks: a sender that is behind, or never is)."""
        self.credit = credit
        self.on_spent(credit <= 0)

    @property
    def counters(self) -> Counter[tuple[str, str]]:
        """(target name, sent|failed|dropped) -> count: the sender's last report and the drops here."""
        return self._reported + Counter({(name, "dropped"): count for name, count in self._dropped_here.items()})

    def pending(self) -> int:
        return 0

    async def drain(self, timeout_s: float = 1.0) -> None:
        """The sender drains what it has when it is told to stop."""
        self._flush()

    async def close(self) -> None:
        self._flush()
        self.refresh()
        try:
            self._socket.send(STOP, zmq.NOBLOCK)
        except zmq.Again:
            pass
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._process.wait, 2.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self.refresh()
        if self._watched is not None:
            self._loop.remove_reader(self._watched)
            self._watched = None
        self._socket.close()
        try:
            for name in os.listdir(self._dir):
                os.unlink(os.path.join(self._dir, name))
            os.rmdir(self._dir)
        except OSError:
            pass


def use_when_ready(sender: NotificationProcess, use: Callable[[NotificationProcess], None]) -> asyncio.Task:
    """Wait for `sender` in the background (the worker does not wait for it to start
    serving), then `use` it; meanwhile the plugin's in-process notifier sends."""
    async def wait() -> None:
        try:
            ready = await sender.ready()
        except asyncio.CancelledError:
            await sender.close()
            raise
        if ready:
            use(sender)
        else:
            await sender.close()
    return asyncio.get_running_loop().create_task(wait())


async def stop_notifiers(switch: asyncio.Task | None, notifiers: list, what: str) -> None:
    """Stop the sender switch and every notifier a plugin used; log what each dropped."""
    if switch is not None and not switch.done():
        switch.cancel()
        await asyncio.gather(switch, return_exceptions=True)
    for notifier in dict.fromkeys(notifiers):
        await notifier.drain(1.0)
        await notifier.close()
        log_dropped(notifier.counters, what)


def log_dropped(counters: Counter, what: str) -> None:
    """One line per target that lost notifications (at stop): how many were dropped."""
    for (name, kind), count in sorted(counters.items()):
        if kind == "dropped" and count:
            log.warning("%s %s: %d notifications dropped (the sender fell behind or the target was down)",
                        what, name, count)


class SenderProcess(NotificationProcess):
    """HTTP POSTs in the sender process, with `Notifier`'s methods."""

    def __init__(self, queue_size: int, max_connections: int, keepalive_s: float,
                 timeout_s: float = 5.0, tls: tuple[str, str, str, bool] = ("", "", "", True),
                 nice: int = SENDER_NICE, idle: bool = True, cpu_share: float = CPU_SHARE) -> None:
        super().__init__("http", queue_size, [max_connections, keepalive_s, timeout_s, list(tls)], nice, idle,
                         cpu_share)
        self._targets: dict[tuple[str, int, float | None], bytes] = {}  # (url, headers, timeout) -> JSON

    def send(self, url: str, headers: Mapping[str, str], payload: Callable[[], Any], key: str = "",
             timeout_s: float | None = None) -> bool:
        return self.offer(self._target(url, headers, timeout_s), url, key, payload)

    def _target(self, url: str, headers: Mapping[str, str], timeout_s: float | None) -> bytes:
        """The JSON of where a record goes and how long its POST may take, made once."""
        target = self._targets.get((url, id(headers), timeout_s))
        if target is None:
            target = self._targets[url, id(headers), timeout_s] = orjson.dumps([url, headers, timeout_s])
        return target

    def send_vmq(self, url: str, headers: Mapping[str, str], hook: str, base64_payload: bool,
                 event: Callable[[], Mapping[str, Any]], key: str = "", timeout_s: float | None = None) -> bool:
        """A VerneMQ webhook notification; its body is made by the sender from the event."""
        return self.send(url, headers, lambda: (hook, base64_payload, event()), key, timeout_s)

    def send_fields(self, url: str, headers: Mapping[str, str], hook: str, base64_payload: bool,
                    make: Callable[[tuple], Mapping[str, Any]], fields: tuple, key: str = "",
                    timeout_s: float | None = None) -> bool:
        """A VerneMQ webhook notification of an event captured as `fields`: the tuple goes over
        as it is, and the sender makes the event with `make` (a function of
        `actormq.webhooks.events`, named in the record) and the body from it."""
        return self.hand_over(self._target(url, headers, timeout_s), url, key,
                              (hook, base64_payload, fields, make.__name__))


class HttpSink:
    """In the sender process: each record POSTed through the keep-alive pool
    (`actormq.webhooks.keepalive`: the POSTs of notifications, lean)."""

    def __init__(self, queue_size: int, settings: list) -> None:
        from actormq.webhooks.http import Notifier, client_ssl_context
        from actormq.webhooks.keepalive import KeepAlivePool
        from actormq.webhooks import events, vmq_bodies  # noqa: F401 (imported now, not by the first POST)
        max_connections, keepalive_s, timeout_s, tls = settings
        # its TLS context is made now: start-up work, before the CPU budget counts
        context = client_ssl_context(*tls) if any(tls[:3]) or not tls[3] else None
        self.pool = KeepAlivePool(max_connections, keepalive_s, context)
        # a lane per connection of the pool: as many POSTs in flight as the endpoint takes (a
        # client's events stay in order on its lane). The worker's credit bounds what waits
        # here; a lane that filled up would drop what the worker paid to hand over, so each
        # lane could hold it all
        self.lanes = self.notifier = Notifier(self.pool, queue_size * max_connections, timeout_s,
                                              max_connections)
        self.counters = self.notifier.counters
        self._targets: dict[bytes, list] = {}

    def put(self, target: bytes, key: str, body: Any) -> None:
        url_headers = self._targets.get(target)
        if url_headers is None:
            url_headers = self._targets[target] = orjson.loads(target)
        self.notifier.send(url_headers[0], url_headers[1], _body_maker(body), key, url_headers[2])

    async def drain(self, timeout_s: float) -> None:
        await self.notifier.drain(timeout_s)

    async def close(self) -> None:
        await self.notifier.close()
        await self.pool.close()


def _body_maker(record_body: Any) -> Callable[[], bytes]:
    """What makes the POST body of a record: the body itself, or (a VerneMQ event from
    `send_vmq`, or its captured fields from `send_fields`) the JSON body VerneMQ sends for it."""
    if type(record_body) is bytes:
        return lambda: record_body

    def vmq_body() -> bytes:
        from actormq.webhooks import events
        from actormq.webhooks.vmq_bodies import build_body
        hook, base64_payload, event, *maker = record_body
        if maker:       # captured fields (`send_fields`)
            event = getattr(events, maker[0])(event)
        return orjson.dumps(build_body(hook, event, base64_payload))
    return vmq_body


def records(batch: bytes) -> list[tuple[bytes, str, Any]]:
    """(target, key, body) of each record of a batch."""
    return pickle.loads(batch)


async def _serve(address: str, parent: int, queue_size: int, kind: str, settings: Any, nice: int,
                 idle: bool, cpu_share: float) -> None:
    module, _, name = SINKS[kind].partition(":")
    sink = getattr(importlib.import_module(module), name)(queue_size, settings)
    tune_gc()
    socket = zmq.asyncio.Context.instance().socket(zmq.PAIR)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(address)
    await socket.send(orjson.dumps({}))          # hello: the worker may send now
    lower_priority(nice, idle)      # only now: started at the broker's priority, it is ready at once
    budget = budget_for(cpu_share)
    if budget is not None:
        sink.lanes.gate = budget.wait       # each delivery waits while the sender is over its budget
    reporter = asyncio.get_running_loop().create_task(_report(socket, sink, parent))
    try:
        while True:
            batch = await socket.recv()
            if batch == STOP:
                await sink.drain(1.0)
                break
            for target, key, body in records(batch):
                sink.put(target, key, body)
    finally:
        reporter.cancel()
        await sink.close()      # what it could not send by now is counted as dropped
    socket.setsockopt(zmq.LINGER, 1000)         # the last report reaches the worker
    await _send_report(socket, sink, 0)


async def _report(socket, sink, parent: int) -> None:
    """Credit for what was sent (or failed, or dropped) to the worker every CREDIT_INTERVAL
    when there is any (each report wakes the worker), the counters once a second; stop
    everything when the worker is gone."""
    finished = 0
    ticks = 0
    while True:
        await asyncio.sleep(CREDIT_INTERVAL)
        ticks += 1
        done = sum(sink.counters.values())
        with_counters = ticks % round(REPORT_INTERVAL / CREDIT_INTERVAL) == 0
        if with_counters and os.getppid() != parent:
            os._exit(0)
        if done > finished or with_counters:
            await _send_report(socket, sink, done - finished, with_counters)
            finished = done


async def _send_report(socket, sink, credit: int, with_counters: bool = True) -> None:
    report: dict = {"credit": credit}
    if with_counters:
        report["counters"] = {f"{name} {what}": value for (name, what), value in sink.counters.items()}
    try:
        await socket.send(orjson.dumps(report), zmq.NOBLOCK)
    except zmq.Again:
        pass


def lower_priority(nice: int = SENDER_NICE, idle: bool = True) -> None:
    """The broker comes first: the sender uses the CPU it leaves. With `idle`, SCHED_IDLE
    (where the system allows it); else, or where it is refused, SCHED_OTHER (a real-time
    policy inherited from the broker, `chrt`, is left: under it nice would count for nothing).
    Nice `nice` either way, or a nicer one it already has. Linux keeps both per thread: every
    thread the process has by then (ZeroMQ's I/O thread, a client library's) is lowered, and
    threads started later inherit it from the thread that starts them."""
    refused = None
    for thread in _threads():
        refused = _lower_thread(thread, nice, idle) or refused
    if refused is not None:
        log.info("notification sender: scheduling policy not lowered (%s)", refused)


def _threads() -> list[int]:
    """The ids of this process's threads (0, the calling one, where /proc is missing)."""
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _lower_thread(thread: int, nice: int, idle: bool) -> OSError | AttributeError | None:
    """Lower one thread; why its policy could not be lowered, if it could not."""
    try:
        if nice > os.getpriority(os.PRIO_PROCESS, thread):
            os.setpriority(os.PRIO_PROCESS, thread, min(nice, 19))
    except OSError as err:
        log.info("notification sender: nice not raised (%s)", err)
    policies = [os.SCHED_IDLE, os.SCHED_OTHER] if idle and hasattr(os, "SCHED_IDLE") else [os.SCHED_OTHER]
    refused = None
    for policy in policies:
        try:
            if os.sched_getscheduler(thread) != policy:
                os.sched_setscheduler(thread, policy, os.sched_param(0))
            return None
        except (AttributeError, OSError) as err:     # not Linux, not allowed, or the thread ended
            refused = err
    return refused


def main(argv: list[str]) -> None:
    address, parent, queue_size, kind, settings, nice, policy, cpu_share = argv
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s [notification sender] %(message)s")
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve(address, int(parent), int(queue_size), kind, orjson.loads(settings), int(nice),
                          policy == "idle", float(cpu_share)))


if __name__ == "__main__":
    main(sys.argv[1:])
