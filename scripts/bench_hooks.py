#!/usr/bin/env python3
"""What plugins cost: QoS 0 and QoS 1 fan-in (4 publishers -> 1 subscriber, 64 B,
the scenario of bench_suite.py) on `actormq run -w 1` with no plugin, one and
five no-op plugins on message.publish and message.deliver, and one
asynchronous publish authorization answered from memory (the plugins are in
scripts/bench_plugins), against the targets: one no-op plugin costs at most
10 % of the throughput, five at most 30 %.

The four brokers run side by side (an idle one takes no CPU) and the
variants take turns, `--rounds` times each. Every variant's run is
compared with the no-plugin run of the same round and scenario (a paired
ratio: the load of that moment is in both), and the median ratio counts.
Beside the rate, the broker's CPU time per published message (user + system
of all its processes, over the messages the publishers sent). With `--rate`
the publishers offer that many messages per second instead of all they can:
then the CPU per message is the measure (steadier on a busy machine), and the
throughput a variant would lose on a dedicated core is 1 - cpu(none) / cpu.
Far below saturation every message pays its own socket read and write, which
dilutes what a plugin adds: offer close to what the broker takes.

    python scripts/bench_hooks.py                 # about 3.5 minutes
    python scripts/bench_hooks.py --rate 15000 --rounds 5 --out bench-results/hooks-cpu
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

import bench_suite  # noqa: E402

PLUGIN_DIR = SCRIPTS / "bench_plugins"
NONE = "no plugin"
VARIANTS = {
    NONE: "",
    "1 no-op plugin": "noop",
    "5 no-op plugins": "noop, noop_b, noop_c, noop_d, noop_e",
    "1 async decide (memory)": "memory_decide",
}
TARGETS = {"1 no-op plugin": 0.10, "5 no-op plugins": 0.30}    # most throughput they may cost
SCENARIOS = {"qos0_fanin": 0, "qos1_fanin": 1}
TITLES = {"qos0_fanin": "QoS 0 fan-in", "qos1_fanin": "QoS 1 fan-in"}


def variant_spec(order: str) -> bench_suite.BrokerSpec:
    base = bench_suite.actormq_command(1)
    plugins = {"plugins.paths": str(PLUGIN_DIR), "plugins.order": order} if order else {}

    def command(port: int, workdir: Path, settings: dict, tls=None) -> list[str]:
        return base(port, workdir, {"management.listener.http": "127.0.0.1:0", **settings,
                                    **plugins}, tls)
    return bench_suite.BrokerSpec(command)


def cpu_per_message(result: dict) -> float | None:
    """The broker's CPU microseconds per published message of one run."""
    sent, cpu = result.get("sent"), result.get("broker_cpu_s")
    return cpu / sent * 1e6 if sent and cpu is not None else None


def measures(result: dict) -> dict:
    return {"rate": result.get("rate") or None, "cpu": cpu_per_message(result)}


def summarize(runs: dict) -> dict:
    """Per variant and scenario: the median rate and CPU per message, and the median of
    the paired ratios to the no-plugin run of the same round."""
    summary: dict = {}
    for name, scenarios in runs.items():
        for scenario, results in scenarios.items():
            cell = summary.setdefault(name, {}).setdefault(scenario, {})
            for metric in ("rate", "cpu"):
                values = [measures(result)[metric] for result in results]
                present = [value for value in values if value]
                cell[metric] = statistics.median(present) if present else None
                ratios = [value / reference for value, reference in zip(
                    values, (measures(result)[metric] for result in runs[NONE][scenario]))
                    if value and reference]
                cell[metric + "_ratio"] = statistics.median(ratios) if ratios else None
    return summary


def throughput_cost(cell: dict, fixed_rate: bool) -> float | None:
    """The share of the throughput a variant costs: measured (flat out) or implied by its
    CPU per message (at a fixed rate)."""
    if fixed_rate:
        return 1 - 1 / cell["cpu_ratio"] if cell["cpu_ratio"] else None
    return 1 - cell["rate_ratio"] if cell["rate_ratio"] else None


def markdown(summary: dict, fixed_rate: float) -> str:
    head = ["plugins"]
    for scenario in SCENARIOS:
        head += [f"{TITLES[scenario]} (msg/s)", "vs none", "CPU µs/msg", "vs none"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, scenarios in summary.items():
        cells = [name]
        for scenario in SCENARIOS:
            cell = scenarios[scenario]
            cells.append(f"{cell['rate']:,.0f}" if cell["rate"] else "error")
            cells.append(_change(cell["rate_ratio"]) if name != NONE and not fixed_rate else "")
            cells.append(f"{cell['cpu']:.1f}" if cell["cpu"] else "")
            cells.append(_change(cell["cpu_ratio"]) if name != NONE else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if fixed_rate:
        lines.append(f"Publishers offered {fixed_rate:,.0f} msg/s; msg/s is what the subscriber got.")
    how = "implied by CPU per message" if fixed_rate else "measured"
    for name, limit in TARGETS.items():
        costs = [throughput_cost(summary[name][scenario], fixed_rate) for scenario in SCENARIOS]
        verdict = "unknown" if None in costs else "met" if max(costs) <= limit else "missed"
        shown = ", ".join(f"{TITLES[scenario]} {'?' if cost is None else f'{cost:.0%}'}"
                          for scenario, cost in zip(SCENARIOS, costs))
        lines.append(f"- {name}: costs {shown} of the throughput ({how}); "
                     f"target at most {limit:.0%}: {verdict}")
    return "\n".join(lines) + "\n"


def _change(ratio: float | None) -> str:
    return f"{ratio - 1:+.0%}" if ratio else ""


def run_rounds(args) -> dict:
    """Every variant's broker started once (side by side, idle while the others run), then
    the rounds: each scenario on each variant in turn, CPU counted per run."""
    started = time.monotonic()
    runs: dict = {name: {scenario: [] for scenario in SCENARIOS} for name in VARIANTS}
    with contextlib.ExitStack() as stack:
        brokers = {}
        for name, order in VARIANTS.items():
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-hooks-")))
            broker = bench_suite.Broker(name, bench_suite.free_port(), workdir)
            broker.start(variant_spec(order).command(broker.port, workdir, {}))
            stack.callback(broker.stop)
            brokers[name] = broker
        for round_number in range(args.rounds):
            for scenario, qos in SCENARIOS.items():
                for name, broker in brokers.items():
                    result = one_run(broker, qos, args)
                    runs[name][scenario].append(result)
                    print(f"{time.monotonic() - started:5.0f}s round {round_number + 1} {name:24} "
                          f"{scenario} {json.dumps(result)}", file=sys.stderr, flush=True)
    return runs


def one_run(broker: bench_suite.Broker, qos: int, args) -> dict:
    cpu = broker.cpu()
    try:
        result = bench_suite.fan_in(("-p", broker.port), broker.workdir, args.duration, qos,
                                    args.rate)
    except (bench_suite.SuiteError, OSError, ValueError, KeyError) as exc:
        return {"error": str(exc) or type(exc).__name__}
    result["broker_cpu_s"] = round(broker.cpu() - cpu, 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of publishing per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0,
                        help="messages per second the publishers offer (0: as fast as they can)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/hooks"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    runs = run_rounds(args)
    summary = summarize(runs)
    table = markdown(summary, args.rate)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(
        {"duration": args.duration, "rounds": args.rounds, "rate": args.rate, "runs": runs,
         "summary": summary}, indent=2))
    (args.out / "results.md").write_text(table)
    print(table)
    print(f"({args.rounds} rounds of {args.duration:g} s, {time.monotonic() - started:.0f} s in all)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
