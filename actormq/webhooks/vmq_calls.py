"""Calling the VerneMQ webhooks of one worker: decisions through the auth cache, notifications queued.

`VmqWebhooks` holds the registered webhooks by hook (config ones in lexical
order of name, then runtime ones) and runs them as VerneMQ does: a decision
hook asks its endpoints in order until one answers ok or error (`next` goes
on); a notification hook is queued for every endpoint and never waits. Only
HTTP 200 with a JSON body counts as an answer: anything else is logged,
counted and, for a decision, an *unavailable* error (fail closed).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
import inspect
from functools import partial
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping

import orjson

from actormq.webhooks.auth_cache import AuthCache
from actormq.webhooks.cache_control import colon_typo, max_age
from actormq.webhooks.failure import HttpFailure
from actormq.webhooks.specs import Webhook
from actormq.webhooks.vmq_answers import NEXT, Answer, InvalidAnswer, parse_answer, unavailable
from actormq.webhooks.vmq_bodies import HOOKS, build_body

if TYPE_CHECKING:
    from actormq.webhooks.http import HttpPool, Notifier

log = logging.getLogger("actormq.webhooks")


def _headers(hook: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "vernemq-hook": hook}


class VmqWebhooks:
    """The webhooks of one worker and the way to call them."""

    def __init__(self, pool: HttpPool, notifier: Notifier, cache: AuthCache) -> None:
        self.pool = pool
        self.notifier = notifier
        self.cache = cache
        self.counters: Counter[tuple[str, str, str]] = Counter()  # (endpoint, hook, what)
        self._by_hook: dict[str, list[Webhook]] = {}
        # hook -> the auth cache's `hit` for its one endpoint, for a cacheable hook with one
        self.cached: dict[str, Callable[[tuple], Answer | None]] = {}
        self._headers = {hook: _headers(hook) for hook in HOOKS}
        self._typo_warned: set[str] = set()
        self._retired: list = []
        # on_publish events dropped for want of credit, by the publisher's protocol level: the
        # hot path counts them here in one step, `count_unsent` adds them to the notifier's drops
        self.unsent = [0] * 6

    def set_webhooks(self, webhooks: Iterable[Webhook]) -> None:
        self.count_unsent()
        by_hook: dict[str, list[Webhook]] = defaultdict(list)
        for webhook in webhooks:
            by_hook[webhook.hook].append(webhook)
        self._by_hook = dict(by_hook)
        self.cached = {hook: partial(self.cache.hit, hooked[0].endpoint, hook) for hook, hooked in by_hook.items()
                       if len(hooked) == 1 and HOOKS[hook].cacheable}

    def hooks(self) -> set[str]:
        """The hooks that have at least one endpoint."""
        return set(self._by_hook)

    def webhooks(self) -> list[Webhook]:
        return [webhook for webhooks in self._by_hook.values() for webhook in webhooks]

    def notify(self, hook: str, event: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
               key: str = "") -> None:
        """Queue `hook` for every endpoint registered on it; never waits. `event` may be a
        function that makes it: it is then only made for a notification that is sent."""
        webhooks = self._by_hook.get(hook)
        if not webhooks:
            return
        notifier = self.notifier
        if notifier.credit <= 0:        # the sender is that far behind: dropped, nothing made
            for webhook in webhooks:
                notifier.drop(webhook.endpoint)
            return
        make = event if callable(event) else lambda: event
        headers = self._headers[hook]
        for webhook in webhooks:
            notifier.send_vmq(webhook.endpoint, headers, hook, webhook.base64_payload, make, key,
                              webhook.response_timeout / 1000)

    def notify_fields(self, hook: str, make: Callable[[tuple], Mapping[str, Any]], fields: tuple,
                      key: str = "") -> None:
        """`notify` for an event captured as a tuple of its fields, which `make` (a function of
        `actormq.webhooks.events`) turns into the event where the body is made: the sender
        process, for one that is up. The caller checked `notifier.credit` (and counted the
        event in `unsent` when there was none) before capturing anything."""
        headers = self._headers[hook]
        notifier = self.notifier
        for webhook in self._by_hook.get(hook, ()):
            notifier.send_fields(webhook.endpoint, headers, hook, webhook.base64_payload, make, fields, key,
                                 webhook.response_timeout / 1000)

    def count_unsent(self) -> None:
        """Count the `unsent` on_publish events as dropped for every endpoint of their hook."""
        unsent = self.unsent
        for level, count in enumerate(unsent):
            if count:
                unsent[level] = 0
                for webhook in self._by_hook.get("on_publish_m5" if level == 5 else "on_publish", ()):
                    self.notifier.dropped(webhook.endpoint, count)

    def decide(self, hook: str, event: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
               key: tuple | None = None) -> Answer | Awaitable[Answer]:
        """Ask the endpoints of `hook` in order until one answers ok or error; NEXT if none does.

        The Answer itself when the auth cache answers (no waiting at all), else an awaitable.
        With `key` (the request's fields without payload and peer port, as a tuple) the cache is
        asked with it, and `event` may be a function that makes the event on a miss only."""
        if key is None and callable(event):
            event = event()
        return self._decide(tuple(self._by_hook.get(hook, ())), hook, event, key)

    def _decide(self, webhooks: tuple[Webhook, ...], hook: str, event, key) -> Answer | Awaitable[Answer]:
        cacheable = HOOKS[hook].cacheable
        lookup = self.cache.lookup
        for index, webhook in enumerate(webhooks):
            cached = lookup(webhook.endpoint, hook, event, key) if cacheable else None
            if cached is None:
                return self._ask_then(webhooks[index:], hook, event() if callable(event) else event, key)
            if cached.result != "next":
                return cached
        return NEXT

    async def _ask_then(self, webhooks: tuple[Webhook, ...], hook: str, event, key) -> Answer:
        answer = await self._ask(webhooks[0], hook, event, key)
        if answer.result != "next":
            return answer
        rest = self._decide(webhooks[1:], hook, event, key)
        return await rest if inspect.isawaitable(rest) else rest

    async def _ask(self, webhook: Webhook, hook: str, event: Mapping[str, Any], key: tuple | None = None) -> Answer:
        cacheable = HOOKS[hook].cacheable
        body = build_body(hook, event, webhook.base64_payload, webhook.no_payload)
        self.counters[webhook.endpoint, hook, "requests"] += 1
        try:
            reply = await self.pool.post(webhook.endpoint, self._headers[hook], orjson.dumps(body),
                                         webhook.response_timeout / 1000)
        except HttpFailure as failure:
            return self._failed(webhook, hook, str(failure))
        if reply.status != 200:
            return self._failed(webhook, hook, f"HTTP status {reply.status} (only 200 counts)")
        try:
            answer = parse_answer(hook, orjson.loads(reply.body), webhook.base64_payload)
        except orjson.JSONDecodeError:
            return self._failed(webhook, hook, "the answer is not JSON")
        except InvalidAnswer as err:
            self.counters[webhook.endpoint, hook, "errors"] += 1
            log.error("webhook %s %s: invalid answer, treated as an error: %s", hook, webhook.endpoint, err)
            return Answer("error", error=f"invalid answer: {err}")
        if answer.result == "error":
            self.counters[webhook.endpoint, hook, "errors"] += 1
        if cacheable and answer.ok:
            self._maybe_cache(webhook, hook, event, reply.headers.get("Cache-Control"), answer, key)
        return answer

    def _maybe_cache(self, webhook: Webhook, hook: str, event: Mapping[str, Any], header: str | None,
                     answer: Answer, key: tuple | None) -> None:
        seconds = max_age(header)
        if seconds:
            self.cache.insert(webhook.endpoint, hook, event, seconds, answer, key)
            return
        fix = colon_typo(header)
        if fix and webhook.endpoint not in self._typo_warned:
            self._typo_warned.add(webhook.endpoint)
            log.warning("webhook %s answers 'Cache-Control: %s', which is not a max-age: nothing is "
                        "cached. Answer 'Cache-Control: %s' (an equals sign, not a colon)",
                        webhook.endpoint, header, fix)

    def _failed(self, webhook: Webhook, hook: str, reason: str) -> Answer:
        self.counters[webhook.endpoint, hook, "errors"] += 1
        log.error("webhook %s %s failed: %s", hook, webhook.endpoint, reason)
        return unavailable(reason)

    def use_notifier(self, notifier) -> None:
        """Send notifications through `notifier` from now on (the sender process, once it is
        up); what the one before counted still counts."""
        self.count_unsent()
        self._retired.append(self.notifier)
        self.notifier = notifier

    def stats(self) -> list[dict[str, Any]]:
        self.count_unsent()
        notified: Counter[tuple[str, str]] = Counter()
        for notifier in [*self._retired, self.notifier]:
            refresh = getattr(notifier, "refresh", None)
            if refresh is not None:
                refresh()
            notified.update(notifier.counters)
        rows = [{"endpoint": endpoint, "hook": hook, "stat": what, "value": value}
                for (endpoint, hook, what), value in sorted(self.counters.items())]
        rows += [{"endpoint": endpoint, "hook": "", "stat": what, "value": value}
                 for (endpoint, what), value in sorted(notified.items())]
        return rows
