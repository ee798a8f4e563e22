"""The `actormq bench pub|sub|conn|latency` commands (options in the spirit of emqtt-bench).

Only option parsing and output live here; the work is in `actormq.bench.runner`
(and `actormq.bench.probe` for `latency`).
Runs standalone too: `python -m actormq.bench.cli pub ...`.
"""

from __future__ import annotations

import asyncio
import os

import click

from actormq import fdtable
from actormq.eventloop import new_event_loop
from actormq.bench.client import Endpoint
from actormq.bench.probe import Probe, run_latency
from actormq.bench.runner import Workload, run_conn, run_pub, run_sub

VERSIONS = {"3": 4, "4": 4, "5": 5}


def _common(command):
    """Options every bench command takes."""
    options = [
        click.option("-h", "--host", default="127.0.0.1", show_default=True),
        click.option("-p", "--port", default=1883, show_default=True, type=int),
        click.option("-c", "--clients", default=1, show_default=True,
                     type=click.IntRange(1), help="Number of clients."),
        click.option("-n", "--start-number", default=0, show_default=True, type=int,
                     help="Client indexes (%i) are start-number+1 .. start-number+clients."),
        click.option("--prefix", default=None,
                     help="Client id prefix (client id = prefix + index)."),
        click.option("-V", "--version", "mqtt_version", type=click.Choice(sorted(VERSIONS)),
                     default="3", show_default=True, help="MQTT 3.1.1 (3) or 5."),
        click.option("-u", "--username", default=None),
        click.option("-P", "--password", default=None),
        click.option("--cafile", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Connect over TLS, trusting the CAs in this PEM file."),
        click.option("-k", "--keepalive", default=60, show_default=True, type=int),
        click.option("--clean/--no-clean", default=True, show_default=True,
                     help="Clean start / clean session."),
        click.option("-x", "--session-expiry", type=int, default=None,
                     help="MQTT 5 session expiry interval (s)."),
        click.option("--concurrency", default=50, show_default=True, type=click.IntRange(1),
                     help="Connections opened at the same time."),
        click.option("--ready-file", type=click.Path(dir_okay=False), default=None,
                     help="Written once every client is connected (and subscribed)."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
        click.option("--quiet", is_flag=True, help="No live progress on stderr."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _messages(command):
    """Options of the commands that move messages."""
    options = [
        click.option("-t", "--topic", default="bench/%i", show_default=True,
                     help="Topic (pattern: %i client index, %c client id)."),
        click.option("-q", "--qos", default=0, show_default=True, type=click.IntRange(0, 2)),
        click.option("-d", "--duration", default=10.0, show_default=True, type=float,
                     help="Seconds to run."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group("bench")
def bench() -> None:
    """Measure an MQTT broker: publish, subscribe, connect."""


@bench.command("pub")
@_common
@_messages
@click.option("-s", "--size", default=64, show_default=True, type=click.IntRange(16),
              help="Payload size in bytes (the first 16 carry index, sequence, send time).")
@click.option("-I", "--interval", type=float, default=None,
              help="Milliseconds between messages of each client.")
@click.option("-r", "--rate", type=float, default=None,
              help="Messages per second of all clients together.")
@click.option("--window", default=100, show_default=True, type=click.IntRange(1, 65535),
              help="QoS 1/2 messages in flight per client.")
@click.option("-L", "--limit", default=0, show_default=True, type=click.IntRange(0),
              help="Messages per client (0: no limit).")
@click.option("--grace", default=10.0, show_default=True, type=float,
              help="Seconds to wait for outstanding acknowledgements and for what "
                   "was written to leave the clients.")
def pub(interval, rate, **options) -> None:
    """Publish messages."""
    if interval is not None and rate is not None:
        raise click.UsageError("give -I/--interval or -r/--rate, not both")
    per_second = 1000.0 / interval if interval else (rate / options["clients"] if rate else None)
    _run(run_pub, "pub", options, per_second=per_second, size=options.pop("size"),
         window=options.pop("window"), limit=options.pop("limit"), grace=options.pop("grace"))


@bench.command("sub")
@_common
@_messages
@click.option("--count", type=click.IntRange(0), default=None,
              help="Stop once this many messages arrived (0: right after subscribing).")
@click.option("--idle", type=float, default=None,
              help="Stop after this many seconds without a message (once one arrived).")
def sub(**options) -> None:
    """Subscribe and measure what arrives: rate, latency, loss, duplicates."""
    _run(run_sub, "sub", options, count=options.pop("count"), idle=options.pop("idle"))


@bench.command("conn")
@_common
@click.option("-d", "--duration", default=0.0, show_default=True, type=float,
              help="Seconds to hold the connections open.")
@click.option("--source-address", "source", default=None, metavar="ADDRESS",
              help="Local address the connections come from (e.g. 127.0.0.2): each source "
                   "address has its own range of ephemeral ports, about 28,000 on Linux.")
def conn(**options) -> None:
    """Open connections and measure connections per second."""
    _run(run_conn, "conn", options, source=options.pop("source"))


@bench.command("latency")
@click.option("-h", "--host", default="127.0.0.1", show_default=True)
@click.option("-p", "--port", default=1883, show_default=True, type=int,
              help="The publisher's port (and the subscriber's unless --sub-port).")
@click.option("--sub-port", type=int, default=None,
              help="The subscriber's port (e.g. another worker's, to cross workers).")
@click.option("-V", "--version", "mqtt_version", type=click.Choice(sorted(VERSIONS)),
              default="3", show_default=True, help="MQTT 3.1.1 (3) or 5.")
@click.option("-u", "--username", default=None)
@click.option("-P", "--password", default=None)
@click.option("-t", "--topic", default="latency/1", show_default=True)
@click.option("-q", "--qos", default=1, show_default=True, type=click.IntRange(0, 2))
@click.option("-s", "--size", default=64, show_default=True, type=click.IntRange(16),
              help="Payload size in bytes (the first 16 carry index, sequence, send time).")
@click.option("-r", "--rate", default=2000.0, show_default=True, type=click.FloatRange(min=1),
              help="Messages per second.")
@click.option("-d", "--duration", default=5.0, show_default=True, type=float,
              help="Seconds to publish.")
@click.option("--grace", default=5.0, show_default=True, type=float,
              help="Seconds to wait for what is still on its way.")
@click.option("--series", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write every message's seq, send and receive time (ns, CSV) to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def latency(host, port, sub_port, mqtt_version, username, password, as_json, **options) -> None:
    """One publisher and one subscriber process at a fixed rate: the time from
    the publisher's send() to the subscriber's recv(), and loss / duplicates."""
    endpoint = Endpoint(host=host, port=port, version=VERSIONS[mqtt_version],
                        username=username, password=_bytes(password))
    summary = run_latency(endpoint, Probe(sub_port=sub_port, prefix=f"latency-{os.getpid()}-",
                                          **options))
    click.echo(summary.to_json() if as_json else summary.to_text())
    if summary.connected < 2 or summary.errors:
        raise SystemExit(1)


def _run(runner, command: str, options: dict, source: str | None = None, **workload) -> None:
    as_json = options.pop("as_json")
    endpoint = Endpoint(host=options.pop("host"), port=options.pop("port"),
                        version=VERSIONS[options.pop("mqtt_version")],
                        keepalive=options.pop("keepalive"), clean_start=options.pop("clean"),
                        session_expiry=options.pop("session_expiry"),
                        username=options.pop("username"), password=_bytes(options.pop("password")),
                        tls=_tls_context(options.pop("cafile")), source=source)
    prefix = options.pop("prefix") or f"bench-{command}-{os.getpid()}-"
    work = Workload(prefix=prefix, progress=not options.pop("quiet"), **options, **workload)
    fdtable.reserve(work.clients + 64)
    summary = _event_loop_run(runner(work, endpoint))
    click.echo(summary.to_json() if as_json else summary.to_text())
    if not summary.connected:
        raise SystemExit(1)


def _tls_context(cafile: str | None):
    if cafile is None:
        return None
    import ssl
    return ssl.create_default_context(cafile=cafile)


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _event_loop_run(coro):
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


if __name__ == "__main__":
    bench()
