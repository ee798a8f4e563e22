"""The chain runners: one `Chain` per hook point, run in the point's mode.

A chain is the ordered tuple of `Provider`s (one plugin's method at one
point; the first plugin of `plugins.order` first, the outermost, the one
with most control). The core calls exactly one runner per point:

- `Chain.decide(*args)` (`Mode.DECIDE`): providers in order until one says
  ok or error (see `actormq.hooks.results`); if all say next, the chain's
  `default` decides. Returns a `Decision` **when every provider answered
  synchronously**, else an `asyncio.Future` that resolves to the
  `Decision` — the core then holds that client's packets until it is done
  (the waiting pipeline); nothing blocks the loop.
- `Chain.fold(*args)` (`Mode.FOLD`): the value is the last argument; each
  provider may return a new value (None = unchanged, `DROP` = drop, the
  chain ends). Returns the final value (the same object when nobody
  changed it: the core keeps its encoded bytes) or `DROP`; a Future when a
  provider is async (not allowed at ``message.deliver``).
- `Chain.notify(*args)` (`Mode.NOTIFY`): puts the event on each provider's
  bounded queue and returns at once; the plugin's own task calls it later
  (see `actormq.hooks.notify`). A full queue drops the event and counts it.

Failures. A provider that raises, returns an answer its point does not
take, or (async) exceeds its `timeout` has failed: its breaker counts and
logs it (`actormq.hooks.health`), and its failure policy decides — ``deny``:
the decision is a refusal with the chain's `failure_code` (fold: the message
is dropped); ``ignore``: as if it said next (fold: value unchanged). While
its breaker is open it is not called and its policy decides the same way.
No exception from a plugin ever reaches the core or the client.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Callable

from actormq.hooks.health import Breaker, PluginStats
from actormq.hooks.points import HookPoint
from actormq.hooks.results import ALLOWED, DROP, Decision, decision_from

_perf = time.perf_counter


class Provider:
    """One plugin's hook method at one point, with that plugin's policy, stats and breaker."""

    __slots__ = ("name", "point", "fn", "is_async", "timeout", "deny_on_failure", "stats",
                 "breaker", "queue")

    def __init__(self, name: str, point: HookPoint, fn: Callable, timeout: float,
                 failure_policy: str, stats: PluginStats, breaker: Breaker, queue=None) -> None:
        self.name = name
        self.point = point
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.timeout = timeout
        self.deny_on_failure = failure_policy == "deny"
        self.stats = stats
        self.breaker = breaker
        self.queue = queue          # the plugin's NotifyQueue, for notify points

    def failed(self, error: BaseException | str, timed_out: bool = False) -> None:
        self.breaker.failed(self.point.dotted, error, timed_out)

    async def settle(self, awaitable) -> tuple[bool, Any]:
        """Await an async answer within the timeout: (True, answer) or (False, None) on failure."""
        started = _perf()
        try:
            answer = await asyncio.wait_for(awaitable, self.timeout)
        except asyncio.TimeoutError:
            self.failed(f"no answer within {self.timeout:g}s", timed_out=True)
            return False, None
        except Exception as exc:    # a plugin's error never reaches the core
            self.failed(exc)
            return False, None
        self.stats.record(_perf() - started)
        return True, answer


def _is_awaitable(answer: Any) -> bool:
    return hasattr(answer, "__await__")


class Chain:
    """The providers of one hook point, in plugin order, and how to run them."""

    __slots__ = ("point", "providers", "default", "failure_code", "_modifiers")

    def __init__(self, point: HookPoint, providers: tuple[Provider, ...],
                 default: Decision = ALLOWED, failure_code: int = 0x87) -> None:
        self.point = point
        self.providers = providers
        self.default = default
        self.failure_code = failure_code
        self._modifiers = point.modifiers

    def __repr__(self) -> str:
        return f"<chain {self.point.dotted}: {', '.join(p.name for p in self.providers)}>"

    # -- decide ------------------------------------------------------------------------

    def decide(self, *args: Any) -> Decision | asyncio.Future:
        return self._decide_from(0, args)

    def _decide_from(self, start: int, args: tuple) -> Decision | asyncio.Future:
        providers = self.providers
        for index in range(start, len(providers)):
            provider = providers[index]
            if not provider.breaker.closed():
                decision = self._failure(provider)
            else:
                started = _perf()
                try:
                    answer = provider.fn(*args)
                except Exception as exc:
                    provider.failed(exc)
                    decision = self._failure(provider)
                else:
                    if _is_awaitable(answer):
                        return asyncio.ensure_future(self._decide_async(index, answer, args))
                    provider.stats.record(_perf() - started)
                    decision = self._interpret(provider, answer)
            if decision is not None:
                return decision
        return self.default

    async def _decide_async(self, index: int, pending, args: tuple) -> Decision:
        provider = self.providers[index]
        answered, answer = await provider.settle(pending)
        decision = self._interpret(provider, answer) if answered else self._failure(provider)
        if decision is not None:
            return decision
        rest = self._decide_from(index + 1, args)
        return rest if isinstance(rest, Decision) else await rest

    def _interpret(self, provider: Provider, answer: Any) -> Decision | None:
        try:
            decision = decision_from(answer, provider.name, self._modifiers)
        except (TypeError, ValueError) as exc:
            provider.failed(exc)
            return self._failure(provider)
        provider.breaker.succeeded()
        return decision

    def _failure(self, provider: Provider) -> Decision | None:
        if provider.deny_on_failure:
            return Decision(False, self.failure_code, f"plugin {provider.name} failed",
                            decided_by=provider.name)
        return None

    # -- fold --------------------------------------------------------------------------

    def fold(self, *args: Any) -> Any:
        return self._fold_from(0, args)

    def _fold_from(self, start: int, args: tuple) -> Any:
        providers = self.providers
        for index in range(start, len(providers)):
            provider = providers[index]
            if not provider.breaker.closed():
                value = self._fold_failure(provider, args)
            else:
                started = _perf()
                try:
                    answer = provider.fn(*args)
                except Exception as exc:
                    provider.failed(exc)
                    value = self._fold_failure(provider, args)
                else:
                    if _is_awaitable(answer):
                        return asyncio.ensure_future(self._fold_async(index, answer, args))
                    provider.stats.record(_perf() - started)
                    value = self._folded(provider, answer, args)
            if value is DROP:
                return DROP
            if value is not args[-1]:
                args = args[:-1] + (value,)
        return args[-1]

    async def _fold_async(self, index: int, pending, args: tuple) -> Any:
        provider = self.providers[index]
        answered, answer = await provider.settle(pending)
        value = self._folded(provider, answer, args) if answered else \
            self._fold_failure(provider, args)
        if value is DROP:
            return DROP
        rest = self._fold_from(index + 1, args[:-1] + (value,))
        return await rest if isinstance(rest, asyncio.Future) else rest

    def _folded(self, provider: Provider, answer: Any, args: tuple) -> Any:
        """The value a fold answer makes: None keeps it, DROP drops, a value of the same type
        replaces it; anything else is a failure of the provider."""
        current = args[-1]
        if answer is None:
            value = current
        elif answer is DROP or type(answer) is type(current):
            value = answer
        else:
            provider.failed(TypeError(f"a fold hook at {self.point.dotted} returns a "
                                      f"{type(current).__name__}, None or DROP, got {answer!r}"))
            return self._fold_failure(provider, args)
        provider.breaker.succeeded()
        return value

    @staticmethod
    def _fold_failure(provider: Provider, args: tuple) -> Any:
        return DROP if provider.deny_on_failure else args[-1]

    # -- notify ------------------------------------------------------------------------

    def notify(self, *args: Any) -> None:
        for provider in self.providers:
            provider.queue.put(provider, args)
