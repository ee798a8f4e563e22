"""The Queue against a plain list model, for random sequences of enqueue, pop,
acknowledge, put back, online/offline, a full store and reopening the store,
under random limits, order, drop policy and disc_only window.

The model keeps the queued messages in arrival order and the ones in flight
(popped, not yet acknowledged) apart; it says what every step must return and
which rows the store must hold afterwards.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actormq.actors.messages import Delivery, Message
from actormq.actors.queue import Queue, QueueFull, QueueLimits
from actormq.errors import StorageFullError
from actormq.storage.ram import RamStore
from actormq.storage.records import queue_prefix, split_queue_key


class RefusingStore(RamStore):
    """A RamStore that refuses queue rows while `full` is set."""

    full = False

    def put(self, table: str, key: bytes, value: bytes) -> None:
        if self.full and table == "queue":
            raise StorageFullError("full")
        super().put(table, key, value)


class QueueModel(RuleBasedStateMachine):
    """Queue (the system) and two lists (the model) fed the same steps."""

    @initialize(max_online=st.integers(0, 6), max_offline=st.integers(0, 6), lifo=st.booleans(),
                drop_oldest=st.booleans(), persistent=st.booleans(),
                window=st.one_of(st.none(), st.integers(1, 4)))
    def start(self, max_online, max_offline, lifo, drop_oldest, persistent, window):
        self.limits = QueueLimits(max_online, max_offline, lifo, drop_oldest)
        self.store = RefusingStore() if persistent else None
        self.window = window if persistent and not lifo else None
        self.queue = Queue("c", self.limits, self.store, window=window)
        self.queued: list[Delivery] = []     # arrival order
        self.in_flight: list[Delivery] = []
        self.dropped = 0
        self.next_number = 0

    # -- model helpers ---------------------------------------------------------

    def stored(self, delivery: Delivery) -> bool:
        return self.store is not None and (delivery.qos > 0 or self.window is not None)

    def limit(self) -> int:
        return self.limits.max_online if self.queue.online else self.limits.max_offline

    def next_in_model(self) -> Delivery:
        return self.queued[-1] if self.limits.lifo else self.queued[0]

    # -- rules ---------------------------------------------------------------------

    @rule(qos=st.integers(0, 2))
    def enqueue(self, qos):
        number = self.next_number
        self.next_number += 1
        delivery = Delivery(Message("t", str(number).encode(), qos, False, {}, None, 0.0, "p"), qos, False)
        limit = self.limit()
        full = bool(limit) and len(self.queued) >= limit
        if full and not (self.limits.drop_oldest and self.queued):
            assert self.queue.enqueue(delivery) is False
            self.dropped += 1
            return
        if self.store is not None and self.store.full and self.stored(delivery):
            try:
                self.queue.enqueue(delivery)
            except QueueFull:
                return
            raise AssertionError("a refused row must raise QueueFull")
        assert self.queue.enqueue(delivery) is True
        if full:
            self.queued.pop(0)
            self.dropped += 1
        self.queued.append(delivery)

    @rule()
    def pop(self):
        delivery = self.queue.pop()
        if not self.queued:
            assert delivery is None
            return
        expected = self.next_in_model()
        assert delivery is not None and delivery.message.payload == expected.message.payload
        self.queued.remove(expected)
        self.in_flight.append(delivery)

    @precondition(lambda self: self.queued)
    @rule()
    def pop_and_put_back(self):
        delivery = self.queue.pop()
        self.queue.push_front(delivery)
        assert self.queue.pop() is delivery
        self.queue.push_front(delivery)

    @precondition(lambda self: self.in_flight)
    @rule(index=st.integers(0, 100))
    def acknowledge(self, index):
        delivery = self.in_flight.pop(index % len(self.in_flight))
        self.queue.discard(delivery)

    @rule(online=st.booleans())
    def set_online(self, online):
        self.queue.online = online

    @precondition(lambda self: self.store is not None)
    @rule(full=st.booleans())
    def set_store_full(self, full):
        self.store.full = full

    @precondition(lambda self: self.store is not None)
    @rule()
    def reopen(self):
        """A restart: the stored rows (queued and in flight) come back in arrival order."""
        kept = [d for d in self.queued + self.in_flight if self.stored(d)]
        self.queued = sorted(kept, key=lambda d: int(d.message.payload))
        self.in_flight = []
        self.dropped = 0  # the counter lives with the Queue object
        self.queue = Queue("c", self.limits, self.store, window=self.window)
        self.queue.load()

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def same_length(self):
        assert len(self.queue) == len(self.queued)

    @invariant()
    def rows_match_what_is_stored(self):
        if self.store is None:
            return
        seqs = {split_queue_key(key)[1] for key, _ in self.store.scan("queue", queue_prefix("c"))}
        assert seqs == {d.seq for d in self.queued + self.in_flight if self.stored(d)}

    @invariant()
    def window_bounds_memory(self):
        if self.window is not None:
            assert len(self.queue.snapshot()) <= self.window

    @invariant()
    def drops_are_counted(self):
        assert self.queue.dropped == self.dropped


QueueModel.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
test_queue_matches_the_list_model = QueueModel.TestCase
