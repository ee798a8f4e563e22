#!/usr/bin/env python3
"""What auth and ACL cost: fan-in with the password file and a 1,000-rule
acl.conf, fan-in with HTTP ACL (cache on), and HTTP auth of 2,000 CONNECTs
at concurrency 50, each against a fresh `actormq run -w 1` on a free
loopback port; the HTTP endpoint is a local aiohttp server in this process.
`hook_only` is the authorization hook path alone (a plugin that always says
next, scripts/bench_plugins/noop_authorize.py): what any authorization
plugin costs before it does any work.

    python scripts/bench_auth.py --duration 5 [--rounds 3] [--json]

Each configuration runs in interleaved rounds (A, B, C, A, B, C, ...) and
reports the median, so a busy machine hurts every configuration alike.
Targets (issue): file ACL with cache costs <= 10 % of fan-in throughput;
HTTP auth >= 2,000 connections/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_suite  # noqa: E402
from actormq.auth.hashes import make_pbkdf2_hash  # noqa: E402

USER, PASSWORD = "bench", "bench-pw"
PLUGIN_DIR = Path(__file__).resolve().parent / "bench_plugins"
RULES = 1_000


class LocalEndpoint:
    """An aiohttp server on a loopback port in a thread: 200 to every auth / ACL request."""

    def __init__(self) -> None:
        self.requests = 0
        self.url = ""
        self._ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait(10)

    async def _answer(self, request):
        self.requests += 1
        await request.read()
        return web.Response(text="")

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, bench_suite.HOST, 0, backlog=1024).start())
        self.url = f"http://{bench_suite.HOST}:{runner.addresses[0][1]}"
        self._ready.set()
        loop.run_forever()


def acl_rules(path: Path) -> None:
    """999 rules for other users before the one that lets the bench user through."""
    lines = [f'{{allow, {{user, "other{i}"}}, pubsub, ["fanin/{i}/#", "x/%u/{i}"]}}.' for i in range(RULES - 1)]
    lines.append(f'{{allow, {{user, "{USER}"}}, pubsub, ["fanin/#"]}}.')
    lines.append("{deny, all}.")
    path.write_text("\n".join(lines) + "\n")


def settings_for(name: str, workdir: Path, endpoint: LocalEndpoint) -> list[str]:
    if name == "none":
        return []
    if name == "hook_only":  # the authorization hook path with a plugin that always says next
        return [f"plugins.paths={PLUGIN_DIR}", "plugins.order=noop_authorize"]
    if name == "file_acl":
        passwd, acl = workdir / "passwd", workdir / "acl.conf"
        passwd.write_text(f"{USER}:{make_pbkdf2_hash(PASSWORD)}\n")
        acl_rules(acl)
        return [f"auth.password_file={passwd}", f"acl.file={acl}", "mqtt.allow_anonymous=false"]
    if name == "http_acl":
        return [f"auth.http.acl_req.url={endpoint.url}/acl", "acl.cache.enable=true"]
    if name == "http_auth":
        return [f"auth.http.auth_req.url={endpoint.url}/auth", "mqtt.allow_anonymous=false"]
    raise ValueError(name)


def run_one(config: str, scenario: str, duration: float, endpoint: LocalEndpoint) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-auth-{config}-") as tmp:
        workdir = Path(tmp)
        command = bench_suite.actormq_command(1)
        broker = bench_suite.Broker(config, bench_suite.free_port(), workdir)
        settings = dict(setting.split("=", 1) for setting in settings_for(config, workdir, endpoint))
        broker.start(command(broker.port, workdir, {"management.listener.http": "127.0.0.1:0", **settings}))
        try:
            target = ("-p", broker.port, "-u", USER, "-P", PASSWORD)
            if scenario == "connections":
                return bench_suite.connections(target, workdir, broker)
            return bench_suite.fan_in(target, workdir, duration, 0 if scenario == "qos0" else 1)
        finally:
            broker.stop()


PLAN = [("qos0", ["none", "hook_only", "file_acl", "http_acl"]),
        ("qos1", ["none", "hook_only", "file_acl", "http_acl"]),
        ("connections", ["none", "http_auth"])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    endpoint = LocalEndpoint()
    results: dict = {}
    for scenario, configs in PLAN:
        for _round in range(args.rounds):
            for config in configs:
                try:
                    result = run_one(config, scenario, args.duration, endpoint)
                except bench_suite.SuiteError as problem:
                    result = {"error": str(problem)}
                results.setdefault(scenario, {}).setdefault(config, []).append(result)
                print(f"{scenario:12} {config:10} {result.get('rate') or result.get('conn_rate') or result}",
                      file=sys.stderr, flush=True)
    summary = {scenario: {config: _median(runs) for config, runs in configs.items()}
               for scenario, configs in results.items()}
    print(json.dumps(summary, indent=2) if args.json else _table(summary))
    return 0


def _median(runs: list[dict]) -> dict:
    rates = [run.get("rate", run.get("conn_rate")) for run in runs if "error" not in run]
    checks = sorted({run.get("check", run.get("error", "")) for run in runs})
    return {"median": statistics.median(rates) if rates else None, "runs": rates, "checks": checks}


def _table(summary: dict) -> str:
    lines = ["| scenario | config | median | vs none | runs | checks |", "|---|---|---|---|---|---|"]
    for scenario, configs in summary.items():
        base = configs.get("none", {}).get("median")
        for config, row in configs.items():
            ratio = f"{row['median'] / base:.0%}" if base and row["median"] else "—"
            runs = ", ".join(f"{rate:,.0f}" for rate in row["runs"])
            median = f"{row['median']:,.0f}" if row["median"] else "error"
            lines.append(f"| {scenario} | {config} | {median} | {ratio} | {runs} | {', '.join(row['checks'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
