"""The fast path of a chain, made for its exact providers when the chain is built.

`compiled_fold` and `compiled_decide` return a function written out for one
chain: one plain call per provider, in order, its hook function bound in the
closure, no loop, no per-call lookup of a provider's policy, breaker or
stats. What it does per run: take one from the chain's countdown (`left`),
call each hook, compare the answer with the answers that let the run go on
(fold: None or the value itself; decide: None or NEXT, and OK ends it with
the provider's ready-made `Decision`, through `Chain.allowed_early` when
providers after it were counted). Everything else — another answer, an
awaitable, an exception — is handed to the chain (`Chain.fold_answered`,
`Chain.decide_answered`, `Chain.raised`), which goes on as the general
runner does from that provider. When the countdown is out the run goes to
`Chain.fold_sampled` / `Chain.decide_sampled`: every `SAMPLE_EVERY`-th run,
and every run while a provider of the chain is failing (its breaker decides).

Calls are counted per run, not per call: the countdown says how many runs
went through, and `Chain.settle` credits them to every provider (a run that
ended early takes its credit back from the providers it did not reach).

The source is generated (as `dataclasses` does) so that a chain of five
providers is five calls, not a loop over five.
"""

from __future__ import annotations

from typing import Callable

from actormq.hooks.results import NEXT, OK


def _source(name: str, params: str, kinds: list[bool], goes_on: str, other: Callable,
            result: str) -> str:
    """A runner `name(params)`: each provider called in turn; an answer that `goes_on`
    (an expression of `answer`) moves to the next, `other(index)` gives the lines for
    any other answer; `result` when every provider let the run go on."""
    lines = [f"def {name}({params}):",
             "    left = chain.left",
             "    if not left:",
             f"        return sampled({params})",
             "    chain.left = left - 1"]
    for index, is_async in enumerate(kinds):
        lines += ["    try:",
                  f"        answer = {_call(index, params, is_async)}",
                  "    except Exception as exc:",
                  f"        return raised({index}, exc, ({params},))",
                  f"    if not ({goes_on}):",
                  *other(index)]
    lines.append(f"    return {result}")
    return "\n".join(lines)


def _fold_source(kinds: list[bool]) -> str:
    return _source("fold", "who, value", kinds, "answer is None or answer is value",
                   lambda index: [f"        return answered({index}, answer, who, value)"], "value")


def _decide_source(kinds: list[bool], arity: int) -> str:
    params = ", ".join(f"a{index}" for index in range(arity))
    last = len(kinds) - 1

    def other(index: int) -> list[str]:
        ok = f"allowed{index}" if index == last else f"allowed_early({index})"
        return ["        if answer is OK:",
                f"            return {ok}",
                f"        return answered({index}, answer, ({params},))"]
    return _source("decide", params, kinds, "answer is None or answer is NEXT", other, "default")


def _call(index: int, args: str, is_async: bool) -> str:
    """One provider's call: an ``async def`` hook is run at once up to its first suspension."""
    return f"start(hook{index}({args}))" if is_async else f"hook{index}({args})"


def _kinds(chain) -> list[bool]:
    return [provider.is_async for provider in chain.providers]


def _compile(source: str, name: str, chain, names: dict) -> Callable:
    maker = f"def make({', '.join(names)}):\n" + \
            "\n".join("    " + line for line in source.splitlines()) + f"\n    return {name}\n"
    namespace: dict = {}
    exec(compile(maker, f"<chain {chain.point.dotted}>", "exec"), {"NEXT": NEXT, "OK": OK}, namespace)
    return namespace["make"](**names)


def _hooks(chain, start: Callable) -> dict:
    return {"start": start, **{f"hook{index}": provider.fn
                               for index, provider in enumerate(chain.providers)}}


def compiled_fold(chain, start: Callable) -> Callable:
    """The fast path of a fold chain: ``fold(who, value)``."""
    names = {"chain": chain, "sampled": chain.fold_sampled, "raised": chain.raised,
             "answered": chain.fold_answered, **_hooks(chain, start)}
    return _compile(_fold_source(_kinds(chain)), "fold", chain, names)


def compiled_decide(chain, start: Callable, arity: int) -> Callable:
    """The fast path of a decide chain: ``decide(*args)`` with the point's `arity` arguments."""
    names = {"chain": chain, "sampled": chain.decide_sampled, "raised": chain.raised,
             "answered": chain.decide_answered, "allowed_early": chain.allowed_early,
             "default": chain.default, **_hooks(chain, start),
             **{f"allowed{index}": provider.allowed for index, provider in enumerate(chain.providers)}}
    return _compile(_decide_source(_kinds(chain), arity), "decide", chain, names)
