#!/usr/bin/env python3
"""What plugins cost: QoS 0 and QoS 1 fan-in (4 publishers -> 1 subscriber, 64 B,
the scenario of bench_suite.py) on `actormq run -w 1` with no plugin, one and
five no-op plugins on message.publish and message.deliver, and one
asynchronous publish authorization answered from memory. The plugins are in
scripts/bench_plugins. Variants run interleaved, `--rounds` times each; the
median rate counts. Beside the rate, the broker's CPU time per published
message (user + system of all its processes over the run, divided by the
messages the publishers sent): steadier than the rate on a busy machine.

    python scripts/bench_hooks.py --duration 5 --rounds 3 --out bench-results/hooks
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

import bench_suite  # noqa: E402

PLUGIN_DIR = SCRIPTS / "bench_plugins"
VARIANTS = {
    "no plugin": "",
    "1 no-op plugin": "noop",
    "5 no-op plugins": "noop, noop_b, noop_c, noop_d, noop_e",
    "1 async decide (memory)": "memory_decide",
}
SCENARIOS = ("qos0_fanin", "qos1_fanin")


def variant_spec(order: str) -> bench_suite.BrokerSpec:
    base = bench_suite.actormq_command(1)
    plugins = {"plugins.paths": str(PLUGIN_DIR), "plugins.order": order} if order else {}

    def command(port: int, workdir: Path, settings: dict, tls=None) -> list[str]:
        return base(port, workdir, {"management.listener.http": "127.0.0.1:0", **settings,
                                    **plugins}, tls)
    return bench_suite.BrokerSpec(command)


def cpu_per_message(result: dict, duration: float) -> float | None:
    """The broker's CPU microseconds per published message of one run."""
    sent = (result.get("publish_rate") or 0) * duration
    cpu = result.get("broker_cpu_s")
    return cpu / sent * 1e6 if sent and cpu is not None else None


def markdown(medians: dict, cpu: dict) -> str:
    lines = ["| plugins | QoS 0 fan-in (msg/s) | vs none | CPU µs/msg | QoS 1 fan-in (msg/s) | vs none "
             "| CPU µs/msg |", "|---|---|---|---|---|---|---|"]
    base = medians["no plugin"]
    for name, rates in medians.items():
        cells = []
        for scenario in SCENARIOS:
            rate, reference = rates.get(scenario), base.get(scenario)
            cells.append(f"{rate:,.0f}" if rate else "error")
            cells.append(f"{rate / reference - 1:+.0%}" if rate and reference else "")
            micros = cpu[name].get(scenario)
            cells.append(f"{micros:.1f}" if micros else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-results/hooks"))
    args = parser.parse_args(argv)
    runs: dict = {name: {scenario: [] for scenario in SCENARIOS} for name in VARIANTS}
    for round_number in range(args.rounds):
        for scenario in SCENARIOS:
            for name, order in VARIANTS.items():
                result = bench_suite.run_scenario(scenario, "actormq-w1", variant_spec(order), args)
                runs[name][scenario].append(result)
                print(f"round {round_number + 1} {name:26} {scenario} {json.dumps(result)}",
                      file=sys.stderr, flush=True)
    medians = {name: {scenario: statistics.median(rates) if (rates := [
        r["rate"] for r in results if r.get("rate")]) else None
        for scenario, results in scenarios.items()} for name, scenarios in runs.items()}
    cpu = {name: {scenario: statistics.median(values) if (values := [
        value for r in results if (value := cpu_per_message(r, args.duration))]) else None
        for scenario, results in scenarios.items()} for name, scenarios in runs.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(
        {"runs": runs, "medians": medians, "cpu_us_per_message": cpu}, indent=2))
    table = markdown(medians, cpu)
    (args.out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
