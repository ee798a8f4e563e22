"""`Lanes`, the bounded per-key queues notifications wait in: a key's items go out in order,
a full lane drops and counts, and closing counts what was still queued or on its way."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.webhooks.lanes import Lanes


def run(coroutine):
    return asyncio.run(coroutine)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from("abcde"), min_size=1, max_size=60), st.integers(1, 4))
def test_each_keys_items_are_delivered_once_in_order(keys, lanes):
    async def scenario():
        delivered: list[tuple[str, int]] = []

        async def deliver(target, item):
            await asyncio.sleep(0)
            delivered.append(item)
            return True
        sending = Lanes(deliver, queue_size=1000, lanes=lanes)
        for number, key in enumerate(keys):
            assert sending.put("t", (key, number), key)
        await sending.drain(5.0)
        await sending.close()
        return delivered, sending.counters
    delivered, counters = run(scenario())
    assert sorted(delivered, key=lambda item: item[1]) == [(key, n) for n, key in enumerate(keys)]
    for key in set(keys):
        assert [n for k, n in delivered if k == key] == [n for n, k in enumerate(keys) if k == key]
    assert counters == {("t", "sent"): len(keys)}


def test_a_full_lane_drops_and_closing_counts_what_was_left():
    async def scenario():
        started = asyncio.Event()

        async def never(target, item):
            started.set()
            await asyncio.sleep(3600)
        sending = Lanes(never, queue_size=3, lanes=1)
        accepted = [sending.put("t", number, "a") for number in range(5)]
        await started.wait()            # the first is on its way: room for one more
        accepted += [sending.put("t", number, "a") for number in (5, 6)]
        refused = sending.counters[("t", "dropped")]
        await sending.close()
        return accepted, refused, sending.counters
    accepted, refused, counters = run(scenario())
    assert accepted == [True, True, True, False, False, True, False] and refused == 3
    assert counters == {("t", "dropped"): 7}        # 1 on its way and 3 queued at close
