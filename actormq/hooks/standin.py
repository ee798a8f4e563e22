"""Stand-ins: what a chain runs instead of a plugin's fold hooks while the plugin can only count
their events dropped.

A notification plugin (the VerneMQ webhooks, ExHook) hands its events to a sender process that
returns credit; while the credit is spent its hook at ``message.publish`` or ``message.deliver``
does nothing but count the event dropped, and calling it (the chain's frame and the hook's) is
then most of what the plugin costs the worker per message. Such a plugin keeps a `StandIns`: for
each of those points a plain function of the hook's arguments ``(who, message)`` that counts the
event exactly as the hook would while the credit is spent — the hook's own checks included (the
publisher's protocol level, ``$SYS/`` topics, topic filters) — and returns the message unchanged.
The plugin engages them when its credit runs out and releases them when credit comes back
(`NotificationProcess.on_spent`). While every provider of a fold chain has a stand-in engaged
for the chain's point, the chain's ``fold`` is the stand-ins (`Chain.stand`): with one provider
the stand-in itself, one call, no countdown; as soon as one is released the chain's fast path is
back, made once, not again.

A stand-in's run is not a call of the hook: the provider's call count and latency samples leave
it out (what it counted is in the plugin's dropped counters).
"""

from __future__ import annotations

from typing import Callable

from actormq.hooks.points import HookPoint


class StandIns:
    """One plugin's stand-ins by fold point, whether they are engaged, and the chains that run them."""

    __slots__ = ("functions", "engaged", "chains")

    def __init__(self, functions: dict[HookPoint, Callable]) -> None:
        self.functions = functions
        self.engaged = False
        self.chains: list = []      # the fold chains with a provider of this plugin (the registry's)

    def engage(self, engaged: bool = True) -> None:
        """Stand in for the hooks (False: call them again) from the next event on."""
        if engaged is not self.engaged:
            self.engaged = engaged
            for chain in self.chains:
                chain.stand()

    def release(self) -> None:
        self.engage(False)

    def function(self, point: HookPoint) -> Callable | None:
        """The stand-in for `point` while engaged, else None."""
        return self.functions.get(point) if self.engaged else None


def standing(functions: list[Callable]) -> Callable:
    """A chain's fold made of its providers' stand-ins: each counts, the message goes on."""
    if len(functions) == 1:
        return functions[0]
    functions = tuple(functions)

    def fold(who, value):
        for function in functions:
            function(who, value)
        return value
    return fold
