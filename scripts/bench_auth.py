#!/usr/bin/env python3
"""What auth and ACL cost: QoS 0/1 fan-in (4 publishers -> 1 subscriber) with
no auth, with the authorization hook path alone, with the password file and
a 1,000-rule acl.conf (ACL cache on, the default), with HTTP ACL (cache on),
and 2,000 CONNECTs at concurrency 50 without auth and with HTTP auth.

    python scripts/bench_auth.py [--duration 3] [--rounds 3] [--json]

Each configuration gets one `actormq run -w 1` on a free loopback port,
started once; the scenarios then run against them in interleaved rounds
(A, B, C, A, B, C, ...) and the medians count, so a busy machine hurts
every configuration alike. `hook_only` is a plugin that always says next
(scripts/bench_plugins/noop_authorize.py): what any authorization plugin
costs before it does any work. The HTTP endpoint answers 200 to every
request from a process of its own (aiohttp's low-level server, no access
log, uvloop when installed), so it takes no CPU from this script and no
GIL from anything; its CPU per request is printed beside the figures.

Beside each throughput: the ratio to no auth, and the broker's CPU per
message (or per CONNECT), which a busy machine disturbs far less.
Targets (issue): file ACL with cache costs <= 10 % of fan-in throughput;
HTTP auth >= 2,000 connections/s. The default run takes about 3 minutes on
a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_suite  # noqa: E402
from actormq.auth.hashes import make_pbkdf2_hash  # noqa: E402

USER, PASSWORD = "bench", "bench-pw"
PLUGIN_DIR = Path(__file__).resolve().parent / "bench_plugins"
RULES = 1_000
FANIN_CONFIGS = ["none", "hook_only", "file_acl", "http_acl"]
CONNECT_CONFIGS = ["none", "http_auth"]
LABELS = {"none": "no auth", "hook_only": "hook path only",
          "file_acl": "password file + 1,000-rule acl.conf", "http_acl": "HTTP ACL, cache on",
          "http_auth": "HTTP auth"}


# -- the HTTP endpoint -------------------------------------------------------------------


def _serve(port, requests, ready) -> None:
    """The endpoint process: 200 with an empty body to every request."""
    from aiohttp import web, web_server

    async def answer(request):
        await request.read()
        requests.value += 1
        return web.Response()

    async def serve():
        server = web_server.Server(answer, access_log=None)
        await asyncio.get_running_loop().create_server(server, bench_suite.HOST, port, backlog=1024)
        ready.set()
        await asyncio.Event().wait()

    try:
        import uvloop
        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


class LocalEndpoint:
    """The HTTP auth / ACL endpoint, in a process of its own on a free loopback port."""

    def __init__(self) -> None:
        port = bench_suite.free_port()
        self.url = f"http://{bench_suite.HOST}:{port}"
        context = multiprocessing.get_context("spawn")
        self._requests = context.Value("Q", 0, lock=False)
        ready = context.Event()
        self.proc = context.Process(target=_serve, args=(port, self._requests, ready), daemon=True)
        self.proc.start()
        if not ready.wait(20):
            self.stop()
            raise SystemExit("the HTTP endpoint did not start")

    @property
    def requests(self) -> int:
        return self._requests.value

    def cpu(self) -> float:
        return sum(psutil.Process(self.proc.pid).cpu_times()[:2])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


# -- brokers ------------------------------------------------------------------------------


def acl_rules(path: Path) -> None:
    """999 rules for other users before the one that lets the bench user through."""
    lines = [f'{{allow, {{user, "other{i}"}}, pubsub, ["fanin/{i}/#", "x/%u/{i}"]}}.' for i in range(RULES - 1)]
    lines.append(f'{{allow, {{user, "{USER}"}}, pubsub, ["fanin/#"]}}.')
    lines.append("{deny, all}.")
    path.write_text("\n".join(lines) + "\n")


def settings_for(name: str, workdir: Path, endpoint: LocalEndpoint) -> dict[str, str]:
    if name == "none":
        return {}
    if name == "hook_only":  # the authorization hook path with a plugin that always says next
        return {"plugins.paths": str(PLUGIN_DIR), "plugins.order": "noop_authorize"}
    if name == "file_acl":
        passwd, acl = workdir / "passwd", workdir / "acl.conf"
        passwd.write_text(f"{USER}:{make_pbkdf2_hash(PASSWORD)}\n")
        acl_rules(acl)
        return {"auth.password_file": str(passwd), "acl.file": str(acl), "mqtt.allow_anonymous": "false"}
    if name == "http_acl":
        return {"auth.http.acl_req.url": f"{endpoint.url}/acl", "acl.cache.enable": "true"}
    if name == "http_auth":
        return {"auth.http.auth_req.url": f"{endpoint.url}/auth", "mqtt.allow_anonymous": "false"}
    raise ValueError(name)


def start_brokers(names: list[str], root: Path, endpoint: LocalEndpoint) -> dict[str, bench_suite.Broker]:
    """One broker per configuration, started side by side."""
    command = bench_suite.actormq_command(1)
    brokers = {}
    for name in names:
        workdir = root / name
        workdir.mkdir()
        brokers[name] = bench_suite.Broker(name, bench_suite.free_port(), workdir)

    def start(broker: bench_suite.Broker) -> None:
        broker.start(command(broker.port, broker.workdir, {"management.listener.http": "127.0.0.1:0",
                                                           **settings_for(broker.name, broker.workdir, endpoint)}))
    with ThreadPoolExecutor(len(brokers)) as pool:
        failures = [future.exception() for future in [pool.submit(start, b) for b in brokers.values()]]
    if any(failures):
        for broker in brokers.values():
            broker.stop()
        raise next(failure for failure in failures if failure)
    return brokers


# -- one measurement -----------------------------------------------------------------------


def run_one(broker: bench_suite.Broker, scenario: str, duration: float, endpoint: LocalEndpoint) -> dict:
    target = ("-p", broker.port, "-u", USER, "-P", PASSWORD)
    cpu, endpoint_cpu, requests = broker.cpu(), endpoint.cpu(), endpoint.requests
    if scenario == "connections":
        result = bench_suite.connections(target, broker.workdir, broker)
        count = result["connected"]
    else:
        result = bench_suite.fan_in(target, broker.workdir, duration, 0 if scenario == "qos0" else 1)
        count = result["received"]
    result["cpu_us"] = (broker.cpu() - cpu) / count * 1e6 if count else None
    served = endpoint.requests - requests
    result["endpoint_us"] = (endpoint.cpu() - endpoint_cpu) / served * 1e6 if served else None
    return result


PLAN = [("qos0", FANIN_CONFIGS), ("qos1", FANIN_CONFIGS), ("connections", CONNECT_CONFIGS)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of publishing per fan-in run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    endpoint = LocalEndpoint()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        try:
            brokers = start_brokers(sorted({name for _, names in PLAN for name in names}), Path(tmp), endpoint)
        except bench_suite.SuiteError as problem:
            endpoint.stop()
            raise SystemExit(f"bench_auth: {problem}") from None
        print(f"brokers started in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        try:
            for _round in range(args.rounds):
                for scenario, configs in PLAN:
                    for config in configs:
                        run_started = time.monotonic()
                        try:
                            result = run_one(brokers[config], scenario, args.duration, endpoint)
                        except bench_suite.SuiteError as problem:
                            result = {"error": str(problem)}
                        results.setdefault(scenario, {}).setdefault(config, []).append(result)
                        print(f"{scenario:12} {config:10} {_progress(result)} "
                              f"({time.monotonic() - run_started:.0f} s)", file=sys.stderr, flush=True)
        finally:
            for broker in brokers.values():
                broker.stop()
            endpoint.stop()
    summary = {scenario: {config: _median(runs) for config, runs in configs.items()}
               for scenario, configs in results.items()}
    print(json.dumps(summary, indent=2) if args.json else _report(summary, args, time.monotonic() - started))
    return 0


def _progress(result: dict) -> str:
    if "error" in result:
        return result["error"]
    rate = result.get("rate") or result.get("conn_rate")
    cpu = result["cpu_us"]
    return f"{rate or 0:,.0f}/s, broker {cpu or 0:.1f} us CPU each, {result['check']}"


def _median(runs: list[dict]) -> dict:
    ok = [run for run in runs if "error" not in run]

    def middle(key):
        values = [run[key] for run in ok if run.get(key) is not None]
        return statistics.median(values) if values else None
    rates = [run.get("rate") or run.get("conn_rate") for run in ok]
    return {"median": statistics.median(rates) if rates else None, "runs": rates,
            "cpu_us": middle("cpu_us"), "endpoint_us": middle("endpoint_us"),
            "checks": sorted({run.get("check", run.get("error", "")) for run in runs})}


def _cell(row: dict, base: dict, unit: str) -> str:
    if not row["median"]:
        return "error"
    text = f"{row['median']:,.0f}"
    if row is not base and base["median"]:
        text += f" ({row['median'] / base['median']:.0%})"
    if row["cpu_us"]:
        text += f", {row['cpu_us']:.1f} µs CPU/{unit}"
    return text


def _report(summary: dict, args, elapsed: float) -> str:
    lines = [f"bench_auth: -w 1, {args.rounds} interleaved rounds, fan-in {args.duration:g} s, "
             f"medians; took {elapsed:.0f} s", "",
             "| scenario | " + " | ".join(LABELS[name] for name in FANIN_CONFIGS) + " |",
             "|---|" + "---|" * len(FANIN_CONFIGS)]
    for scenario, title in (("qos0", "QoS 0 fan-in (msg/s)"), ("qos1", "QoS 1 fan-in (msg/s)")):
        configs = summary.get(scenario, {})
        base = configs.get("none", {"median": None})
        lines.append(f"| {title} | " + " | ".join(_cell(configs[name], base, "msg") if name in configs else "—"
                                                   for name in FANIN_CONFIGS) + " |")
    connections = summary.get("connections", {})
    lines += ["", "| 2,000 CONNECTs, concurrency 50 (conn/s) | "
              + " | ".join(LABELS[name] for name in CONNECT_CONFIGS) + " |",
              "|---|" + "---|" * len(CONNECT_CONFIGS)]
    base = connections.get("none", {"median": None})
    lines.append("| conn/s | " + " | ".join(_cell(connections[name], base, "CONNECT") if name in connections
                                             else "—" for name in CONNECT_CONFIGS) + " |")
    http = connections.get("http_auth", {})
    if http.get("endpoint_us"):
        lines.append(f"\nHTTP endpoint: {http['endpoint_us']:.0f} µs CPU per request (its own process).")
    checks = {f"{scenario}/{config}": ", ".join(row["checks"]) for scenario, configs in summary.items()
              for config, row in configs.items() if row["checks"] != ["ok"]}
    if checks:
        lines.append("Checks: " + "; ".join(f"{name}: {text}" for name, text in checks.items()))
    file_acl = [summary.get(s, {}).get("file_acl", {}).get("median") for s in ("qos0", "qos1")]
    plain = [summary.get(s, {}).get("none", {}).get("median") for s in ("qos0", "qos1")]
    if all(file_acl) and all(plain):
        costs = ", ".join(f"{1 - acl / base:.0%}" for acl, base in zip(file_acl, plain))
        cpu = [(summary[s]["file_acl"]["cpu_us"], summary[s]["none"]["cpu_us"]) for s in ("qos0", "qos1")]
        extra = ", ".join(f"{acl / base - 1:+.0%}" if acl and base else "?" for acl, base in cpu)
        lines.append(f"Targets: file ACL costs {costs} of QoS 0, QoS 1 fan-in throughput (<= 10 %; "
                     f"broker CPU per message {extra}); HTTP auth {http.get('median') or 0:,.0f} conn/s "
                     f"(>= 2,000).")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
