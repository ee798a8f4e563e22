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
- `Chain.fold(who, value)` (`Mode.FOLD`: every fold point hooks a message and
  who sends or gets it, so two arguments, passed on without packing); each
  provider may return a new value (None = unchanged, `DROP` = drop, the
  chain ends). Returns the final value (the same object when nobody
  changed it: the core keeps its encoded bytes) or `DROP`; a Future when a
  provider is async (at ``message.deliver`` only a built-in that must wait, such as
  VerneMQ's on_deliver webhook, returns an awaitable: that subscriber's deliveries then
  wait in order, see `actormq.actors.hooked_deliver.not_delivered`).
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

Cost. Each chain runs through a function made for its exact providers when
it is built (`actormq.hooks.compiled`): one plain call per provider, no loop,
no per-call look at a provider's policy, breaker or stats; a fold whose hooks
return None or the value they were given allocates nothing. An ``async def``
hook is started at once and runs until its first real suspension: one that
answers without waiting (from a cache) is as cheap as a sync one and never
holds the client. Calls are counted once per run of the chain (credited to
the providers by `Chain.settle`, which ``plugin show`` runs first); latency
is sampled on one run in `SAMPLE_EVERY`, which goes through the general
runner below, as does every run while a provider of the chain is failing.
While every provider of a fold chain stands in for its hook (a notification
plugin whose sender has no credit, `actormq.hooks.standin`), the chain's
`fold` is the stand-ins instead: they count the event dropped, nothing is called.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Callable

from actormq.hooks.compiled import compiled_decide, compiled_fold
from actormq.hooks.health import Breaker, PluginStats
from actormq.hooks.points import HookPoint, Mode
from actormq.hooks.results import ALLOWED, DROP, NEXT, OK, Decision, decision_from
from actormq.hooks.standin import StandIns, standing

_perf = time.perf_counter
SAMPLE_EVERY = 64                   # runs of a chain per latency sample


class Pending:
    """A provider's answer that is still running: the awaitable to wait for."""

    __slots__ = ("awaitable",)

    def __init__(self, awaitable) -> None:
        self.awaitable = awaitable


class _Failed:
    __slots__ = ()


FAILED = _Failed()      # what Provider.call returns when the provider failed or rests


class Provider:
    """One plugin's hook method at one point, with that plugin's policy and breaker and its
    stats at that point."""

    __slots__ = ("name", "point", "_fn", "is_async", "sync", "timeout", "deny_on_failure", "stats",
                 "breaker", "queue", "allowed", "chain", "stand_ins")

    def __init__(self, name: str, point: HookPoint, fn: Callable, timeout: float,
                 failure_policy: str, stats: PluginStats, breaker: Breaker, queue=None,
                 stand_ins: StandIns | None = None) -> None:
        self.name = name
        self.point = point
        self._fn = fn
        self.chain = None           # the chain it is in, which calls `fn` from its fast path
        self.is_async = inspect.iscoroutinefunction(fn)
        self.sync = not self.is_async
        self.timeout = timeout
        self.deny_on_failure = failure_policy == "deny"
        self.stats = stats
        self.breaker = breaker
        self.queue = queue          # the plugin's NotifyQueue, for notify points
        self.allowed = Decision(True, decided_by=name)     # its plain OK, made once
        self.stand_ins = stand_ins  # the plugin's, when it has any (`actormq.hooks.standin`)

    @property
    def fn(self) -> Callable:
        """The hook method (a trace swaps a wrapper in and out: the chain is made anew)."""
        return self._fn

    @fn.setter
    def fn(self, fn: Callable) -> None:
        self._fn = fn
        if self.chain is not None:
            self.chain.compile()

    def call(self, args: tuple, timed: bool = False) -> Any:
        """The provider's answer: a value, `Pending` while it runs, or `FAILED`; its latency
        sampled when `timed` and on one call in `SAMPLE_EVERY` (the notify queues' calls).
        (The chains' fast path calls `fn` itself.)"""
        breaker = self.breaker
        if breaker.open_until and not breaker.closed(self.stats):
            return FAILED
        self.stats.calls += 1
        try:
            if timed or not self.stats.calls % SAMPLE_EVERY:
                started = _perf()
                answer = self._fn(*args)
                if self.is_async:
                    answer = _start(answer)
                self.stats.sample(_perf() - started)
            else:
                answer = self._fn(*args)
                if self.is_async:
                    answer = _start(answer)
        except Exception as exc:    # a plugin's error never reaches the core
            self.failed(exc)
            return FAILED
        return _pending_if_awaitable(answer) if self.sync else answer

    def failed(self, error: BaseException | str, timed_out: bool = False) -> None:
        self.breaker.failed(self.stats, self.point.dotted, error, timed_out)

    async def settle(self, pending: Pending) -> Any:
        """Await a pending answer within the timeout: the answer, or FAILED. Awaited in a
        task of its own (the chain's resumption, a plugin's notify task), which the
        timeout bounds: the hook's coroutine runs in it, no task more per answer."""
        started = _perf()
        try:
            async with asyncio.timeout(self.timeout):
                answer = await pending.awaitable
        except TimeoutError:
            self.failed(f"no answer within {self.timeout:g}s", timed_out=True)
            return FAILED
        except Exception as exc:
            self.failed(exc)
            return FAILED
        self.stats.sample(_perf() - started)
        return answer


def _pending_if_awaitable(answer: Any) -> Any:
    """A sync hook that returned an awaitable (a Future, a task) is waited for too."""
    return Pending(answer) if answer is not None and hasattr(answer, "__await__") else answer


def _start(coro) -> Any:
    """Run a hook coroutine up to its first suspension: its value when it did not
    suspend, else `Pending` with the rest of it."""
    try:
        first = coro.send(None)
    except StopIteration as stop:
        return stop.value
    return Pending(_finish(coro, first))


async def _finish(coro, first) -> Any:
    return await _Resumed(coro, first)


class _Resumed:
    """The rest of a coroutine that `_start` ran up to its first suspension, as an
    awaitable a Task can run: it hands the Task what the coroutine yields and
    passes cancellation on."""

    __slots__ = ("coro", "first")

    def __init__(self, coro, first) -> None:
        self.coro = coro
        self.first = first

    def __await__(self):
        coro = self.coro
        yielded = self.first
        while True:
            try:
                yield yielded
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                return stop.value


class Chain:
    """The providers of one hook point, in plugin order, and how to run them: `fold` /
    `decide` are the fast path made for these providers (`actormq.hooks.compiled`)."""

    __slots__ = ("point", "providers", "default", "failure_code", "_modifiers", "fold", "decide",
                 "left", "_armed", "_fast_fold")

    def __init__(self, point: HookPoint, providers: tuple[Provider, ...],
                 default: Decision = ALLOWED, failure_code: int = 0x87) -> None:
        self.point = point
        self.providers = providers
        self.default = default
        self.failure_code = failure_code
        self._modifiers = point.modifiers
        self.left = self._armed = 0     # fast runs to go before a sampled one; at the last count
        for provider in providers:
            provider.chain = self
        self.compile()

    def __repr__(self) -> str:
        return f"<chain {self.point.dotted}: {', '.join(p.name for p in self.providers)}>"

    def compile(self) -> None:
        """Make the fast path for the providers' hook functions as they are now."""
        self.settle()
        self.fold, self.decide = self.fold_sampled, self.decide_sampled
        if self.providers and self.point.mode is Mode.FOLD:
            self.fold = compiled_fold(self, _start)
        elif self.providers and self.point.mode is Mode.DECIDE:
            self.decide = compiled_decide(self, _start, len(self.point.args.split(",")))
        self._fast_fold = self.fold
        self.stand()
        self._rearm()

    def stand(self) -> None:
        """Fold with the providers' stand-ins while every provider has one engaged for this
        point, else with the fast path (`actormq.hooks.standin`)."""
        stand_ins = [provider.stand_ins.function(self.point) for provider in self.providers
                     if provider.stand_ins is not None] if self.point.mode is Mode.FOLD else []
        if stand_ins and len(stand_ins) == len(self.providers) and all(stand_ins):
            self.fold = standing(stand_ins)
        else:
            self.fold = self._fast_fold

    # -- counting ------------------------------------------------------------------------

    def settle(self) -> None:
        """Credit the fast runs since the last count to every provider's calls."""
        done = self._armed - self.left
        if done:
            for provider in self.providers:
                provider.stats.calls += done
            self._armed = self.left

    def _rearm(self) -> None:
        self.settle()
        healthy = all(provider.stats.healthy for provider in self.providers)
        self.left = self._armed = SAMPLE_EVERY - 1 if healthy else 0

    def slow_down(self) -> None:
        """A provider failed: every run takes the general runner (and its breaker) until a
        sampled run finds them all healthy again."""
        self.settle()
        self.left = self._armed = 0

    def _unreached(self, index: int) -> None:
        """A fast run ended at provider `index`: the ones after it were not called."""
        for provider in self.providers[index + 1:]:
            provider.stats.calls -= 1

    # -- decide ------------------------------------------------------------------------

    def decide_sampled(self, *args: Any) -> Decision | asyncio.Future:
        self._rearm()
        return self._decide_from(0, args, True)

    def allowed_early(self, index: int) -> Decision:
        """Provider `index`, not the last, said a plain OK on the fast path."""
        self._unreached(index)
        return self.providers[index].allowed

    def decide_answered(self, index: int, answer: Any, args: tuple) -> Decision | asyncio.Future:
        """The fast path met an answer other than next or a plain OK at provider `index`."""
        self._unreached(index)
        provider = self.providers[index]
        if provider.sync:
            answer = _pending_if_awaitable(answer)
        if type(answer) is Pending:
            return asyncio.ensure_future(self._decide_async(index, answer, args))
        decision = self._interpret(provider, answer)
        return self._decide_from(index + 1, args, False) if decision is None else decision

    def raised(self, index: int, exc: Exception, args: tuple) -> Any:
        """Provider `index` raised on the fast path: its failure policy decides, and the
        chain goes on from there."""
        self._unreached(index)
        provider = self.providers[index]
        provider.failed(exc)
        if self.point.mode is Mode.FOLD:
            who, value = args
            value = self._folded(provider, FAILED, value)
            return DROP if value is DROP else self._fold_from(index + 1, who, value, False)
        decision = self._failure(provider)
        return self._decide_from(index + 1, args, False) if decision is None else decision

    def _decide_from(self, start: int, args: tuple, timed: bool) -> Decision | asyncio.Future:
        providers = self.providers
        for index in range(start, len(providers)):
            provider = providers[index]
            answer = provider.call(args, timed)
            if type(answer) is Pending:
                return asyncio.ensure_future(self._decide_async(index, answer, args))
            decision = self._interpret(provider, answer)
            if decision is not None:
                return decision
        return self.default

    async def _decide_async(self, index: int, pending: Pending, args: tuple) -> Decision:
        provider = self.providers[index]
        decision = self._interpret(provider, await provider.settle(pending))
        if decision is not None:
            return decision
        rest = self._decide_from(index + 1, args, False)
        return rest if isinstance(rest, Decision) else await rest

    def _interpret(self, provider: Provider, answer: Any) -> Decision | None:
        if answer is None or answer is NEXT:
            if provider.breaker.in_a_row:
                provider.breaker.succeeded()
            return None
        if answer is OK:
            if provider.breaker.in_a_row:
                provider.breaker.succeeded()
            return provider.allowed
        if answer is FAILED:
            return self._failure(provider)
        try:
            decision = decision_from(answer, provider.name, self._modifiers)
        except (TypeError, ValueError) as exc:
            provider.failed(exc)
            return self._failure(provider)
        if provider.breaker.in_a_row:
            provider.breaker.succeeded()
        return decision

    def _failure(self, provider: Provider) -> Decision | None:
        if provider.deny_on_failure:
            return Decision(False, self.failure_code, f"plugin {provider.name} failed",
                            decided_by=provider.name)
        return None

    # -- fold ------------------------------------------------------------------------

    def fold_sampled(self, who: Any, value: Any) -> Any:
        self._rearm()
        return self._fold_from(0, who, value, True)

    def fold_answered(self, index: int, answer: Any, who: Any, value: Any) -> Any:
        """The fast path met a new value, DROP or an awaitable at provider `index`."""
        self._unreached(index)
        provider = self.providers[index]
        if provider.sync:
            answer = _pending_if_awaitable(answer)
        if type(answer) is Pending:
            return asyncio.ensure_future(self._fold_async(index, answer, who, value))
        value = self._folded(provider, answer, value)
        return DROP if value is DROP else self._fold_from(index + 1, who, value, False)

    def _fold_from(self, start: int, who: Any, value: Any, timed: bool) -> Any:
        providers = self.providers
        for index in range(start, len(providers)):
            provider = providers[index]
            answer = provider.call((who, value), timed)
            if answer is None:
                if provider.breaker.in_a_row:
                    provider.breaker.succeeded()
                continue
            if type(answer) is Pending:
                return asyncio.ensure_future(self._fold_async(index, answer, who, value))
            value = self._folded(provider, answer, value)
            if value is DROP:
                return DROP
        return value

    async def _fold_async(self, index: int, pending: Pending, who: Any, value: Any) -> Any:
        provider = self.providers[index]
        value = self._folded(provider, await provider.settle(pending), value)
        if value is DROP:
            return DROP
        rest = self._fold_from(index + 1, who, value, False)
        return await rest if isinstance(rest, asyncio.Future) else rest

    def _folded(self, provider: Provider, answer: Any, current: Any) -> Any:
        """The value a fold answer makes: None keeps it, DROP drops, a value of the same type
        replaces it; anything else is a failure of the provider."""
        if answer is FAILED:
            return DROP if provider.deny_on_failure else current
        if answer is None:
            value = current
        elif answer is DROP or type(answer) is type(current):
            value = answer
        else:
            provider.failed(TypeError(f"a fold hook at {self.point.dotted} returns a "
                                      f"{type(current).__name__}, None or DROP, got {answer!r}"))
            return DROP if provider.deny_on_failure else current
        if provider.breaker.in_a_row:
            provider.breaker.succeeded()
        return value

    # -- notify ------------------------------------------------------------------------

    def notify(self, *args: Any) -> None:
        for provider in self.providers:
            provider.queue.put(provider, args)


def chain_of(point: HookPoint, providers: tuple[Provider, ...], default: Decision,
             failure_code: int) -> Chain:
    """The chain to run the providers of a point with."""
    return Chain(point, providers, default, failure_code)
