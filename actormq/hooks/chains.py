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
  wait in order, see `actormq.actors.hooked.not_delivered`).
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

Cost. An ``async def`` hook is started at once and runs until its first
real suspension: one that answers without waiting (from a cache) is as
cheap as a sync one and never holds the client. Latency is sampled on one
call in `SAMPLE_EVERY`; calls and failures are all counted. A healthy
provider's unsampled call is made inline by the runner (no `Provider.call`,
no wrapper object); a point with a single provider gets a `SoleProviderChain`
(`chain_of`), which calls the hook method without a loop, and a fold whose
hook returns None or the value it was given allocates nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Callable

from actormq.hooks.health import Breaker, PluginStats
from actormq.hooks.points import HookPoint
from actormq.hooks.results import ALLOWED, DROP, NEXT, OK, Decision, decision_from

_perf = time.perf_counter
SAMPLE_EVERY = 16                   # calls per latency sample (a power of two)
_SAMPLE_MASK = SAMPLE_EVERY - 1


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

    __slots__ = ("name", "point", "fn", "is_async", "sync", "timeout", "deny_on_failure", "stats",
                 "breaker", "queue", "allowed")

    def __init__(self, name: str, point: HookPoint, fn: Callable, timeout: float,
                 failure_policy: str, stats: PluginStats, breaker: Breaker, queue=None) -> None:
        self.name = name
        self.point = point
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.sync = not self.is_async
        self.timeout = timeout
        self.deny_on_failure = failure_policy == "deny"
        self.stats = stats
        self.breaker = breaker
        self.queue = queue          # the plugin's NotifyQueue, for notify points
        self.allowed = Decision(True, decided_by=name)     # its plain OK, made once

    def call(self, args: tuple) -> Any:
        """The provider's answer: a value, `Pending` while it runs, or `FAILED`.
        (The chains call a healthy synchronous provider's `fn` themselves: the same
        without the breaker and sampling checks, on 15 calls in 16.)"""
        breaker = self.breaker
        if breaker.open_until and not breaker.closed(self.stats):
            return FAILED
        stats = self.stats
        stats.calls += 1
        try:
            if stats.calls & _SAMPLE_MASK:
                answer = self.fn(*args)
                if self.is_async:
                    answer = _start(answer)
            else:
                started = _perf()
                answer = self.fn(*args)
                if self.is_async:
                    answer = _start(answer)
                stats.sample(_perf() - started)
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
    """The providers of one hook point, in plugin order, and how to run them."""

    __slots__ = ("point", "providers", "default", "failure_code", "_modifiers", "_steps")

    def __init__(self, point: HookPoint, providers: tuple[Provider, ...],
                 default: Decision = ALLOWED, failure_code: int = 0x87) -> None:
        self.point = point
        self.providers = providers
        self.default = default
        self.failure_code = failure_code
        self._modifiers = point.modifiers
        # what the fast path reads of each provider, fetched once here instead of per call
        # (not `fn`: a trace swaps it in and out at run time)
        self._steps = tuple((provider, provider.stats, provider.is_async) for provider in providers)

    def __repr__(self) -> str:
        return f"<chain {self.point.dotted}: {', '.join(p.name for p in self.providers)}>"

    # -- decide ------------------------------------------------------------------------

    def decide(self, *args: Any, _start_at: int = 0) -> Decision | asyncio.Future:
        steps = self._steps[_start_at:] if _start_at else self._steps
        for provider, stats, is_async in steps:
            if stats.healthy and stats.calls & _SAMPLE_MASK != _SAMPLE_MASK:
                stats.calls += 1
                try:
                    answer = provider.fn(*args)
                    answer = _start(answer) if is_async else _pending_if_awaitable(answer)
                except Exception as exc:    # a plugin's error never reaches the core
                    provider.failed(exc)
                    answer = FAILED
            else:
                answer = provider.call(args)
            if type(answer) is Pending:
                index = self.providers.index(provider)
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
        rest = Chain.decide(self, *args, _start_at=index + 1)
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

    def fold(self, who: Any, value: Any, _start_at: int = 0) -> Any:
        steps = self._steps[_start_at:] if _start_at else self._steps
        for provider, stats, is_async in steps:
            if stats.healthy and stats.calls & _SAMPLE_MASK != _SAMPLE_MASK:
                stats.calls += 1
                try:
                    answer = provider.fn(who, value)
                    if is_async:
                        answer = _start(answer)
                except Exception as exc:    # a plugin's error never reaches the core
                    provider.failed(exc)
                    answer = FAILED
                if answer is None or answer is value:
                    continue
                if not is_async:
                    answer = _pending_if_awaitable(answer)
            else:
                answer = provider.call((who, value))
                if answer is None:
                    if provider.breaker.in_a_row:
                        provider.breaker.succeeded()
                    continue
            if type(answer) is Pending:
                index = self.providers.index(provider)
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
        rest = Chain.fold(self, who, value, _start_at=index + 1)
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


class SoleProviderChain(Chain):
    """A chain of one provider (the common case): its healthy, unsampled calls go
    straight to the hook method, without the loop of the general chain."""

    __slots__ = ("_sole", "_stats", "_is_async")

    def __init__(self, point: HookPoint, providers: tuple[Provider, ...],
                 default: Decision = ALLOWED, failure_code: int = 0x87) -> None:
        super().__init__(point, providers, default, failure_code)
        (self._sole,) = providers
        self._stats = self._sole.stats
        self._is_async = self._sole.is_async

    def decide(self, *args: Any) -> Decision | asyncio.Future:
        stats = self._stats
        if not stats.healthy or stats.calls & _SAMPLE_MASK == _SAMPLE_MASK:
            return Chain.decide(self, *args)
        stats.calls += 1
        provider = self._sole
        try:
            answer = self._sole.fn(*args)
            if self._is_async:
                answer = _start(answer)
        except Exception as exc:    # a plugin's error never reaches the core
            provider.failed(exc)
            answer = FAILED
        if answer is OK:
            return provider.allowed
        if answer is None or answer is NEXT:
            return self.default
        if not self._is_async:
            answer = _pending_if_awaitable(answer)
        if type(answer) is Pending:
            return asyncio.ensure_future(self._decide_async(0, answer, args))
        decision = self._interpret(provider, answer)
        return self.default if decision is None else decision

    def fold(self, who: Any, value: Any) -> Any:
        stats = self._stats
        if not stats.healthy or stats.calls & _SAMPLE_MASK == _SAMPLE_MASK:
            return Chain.fold(self, who, value)
        stats.calls += 1
        try:
            answer = self._sole.fn(who, value)
            if self._is_async:
                answer = _start(answer)
        except Exception as exc:    # a plugin's error never reaches the core
            self._sole.failed(exc)
            answer = FAILED
        if answer is None or answer is value:
            return value
        if not self._is_async:
            answer = _pending_if_awaitable(answer)
        if type(answer) is Pending:
            return asyncio.ensure_future(self._fold_async(0, answer, who, value))
        return self._folded(self._sole, answer, value)


def chain_of(point: HookPoint, providers: tuple[Provider, ...], default: Decision,
             failure_code: int) -> Chain:
    """The chain to run the providers of a point with: the one-provider fast path when there
    is a single provider."""
    kind = SoleProviderChain if len(providers) == 1 else Chain
    return kind(point, providers, default, failure_code)
