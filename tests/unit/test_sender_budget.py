"""`CpuBudget`, the notification sender's CPU budget, on a simulated machine: a sender that
delivers whenever the budget lets it keeps to `share` of each core while the other processes
leave no core to spare, still uses its whole share then, and is never held back when they
leave a core (or more) idle."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.webhooks.budget import BURST, RATE_PERIOD, SPARE_CORES, CpuBudget


class Machine:
    """Simulated time: `cores` CPUs, the other processes using `others` of them, and the
    sender's own CPU time."""

    def __init__(self, cores: int, others: float) -> None:
        self.cores, self.others = cores, others
        self.now = self.own = 0.0

    def busy(self, cores: list[int]) -> float:
        return self.others * self.now + self.own

    def budget(self, share: float) -> CpuBudget:
        return CpuBudget(share, own_cpu=lambda: self.own, clock=lambda: self.now,
                         cores=lambda: list(range(self.cores)), busy=self.busy)


def run_sender(machine: Machine, budget: CpuBudget, seconds: float, cost: float) -> int:
    """Deliver (each taking `cost` s of the sender's CPU) whenever the budget allows, for
    `seconds`; the number of pauses."""
    pauses = 0
    while machine.now < seconds:
        pause = budget.pause()
        if pause > 0:
            pauses += 1
            machine.now += pause
        else:
            machine.now += cost
            machine.own += cost
    return pauses


@settings(max_examples=30, deadline=None)
@given(cores=st.integers(1, 64), share=st.floats(0.005, 0.5), cost=st.floats(0.0005, 0.005),
       spare=st.floats(0.0, 0.99))
def test_on_a_busy_machine_the_sender_keeps_to_its_share_of_each_core(cores, share, cost, spare):
    machine = Machine(cores, others=max(0.0, cores - SPARE_CORES - spare * share * cores))
    budget = machine.budget(share)
    seconds = 8.0
    run_sender(machine, budget, seconds, cost)
    allowed = min(share * cores, 1.0)       # one sender: at most one core, however many it may use
    used = machine.own / machine.now
    assert used <= allowed + (BURST + cost) / machine.now + 1e-9
    if share * cores < 0.9:                 # it has CPU to spare for itself: it uses its share
        assert used >= allowed - (BURST + cost + allowed * RATE_PERIOD) / machine.now - 1e-9
    assert budget.rate == max(share * cores, cores - machine.others - SPARE_CORES)


@settings(max_examples=30, deadline=None)
@given(cores=st.integers(2, 64), idle=st.floats(1.0, 63.0), cost=st.floats(0.0005, 0.005))
def test_with_a_core_to_spare_the_sender_is_never_held_back(cores, idle, cost):
    idle = min(idle, float(cores))
    machine = Machine(cores, others=cores - idle)
    budget = machine.budget(0.01)
    # past the first measurement of the machine: the debt of the time before it is paid
    run_sender(machine, budget, RATE_PERIOD + 0.1, cost)
    start_own, start_now = machine.own, machine.now
    if idle - SPARE_CORES >= 1.01:      # more than the one core a sender can use: no debt grows
        assert run_sender(machine, budget, start_now + 4.0, cost) == 0
        assert machine.own - start_own == pytest.approx(machine.now - start_now)     # all of one core, no pause
    else:
        run_sender(machine, budget, start_now + 4.0, cost)
        used = (machine.own - start_own) / (machine.now - start_now)
        assert used <= max(0.01 * cores, idle - SPARE_CORES) + (BURST + cost) / 4.0 + 1e-9
