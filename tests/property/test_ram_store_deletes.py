"""RamStore.delete_many against a dict model: whatever keys are stored, and
whatever batch is deleted (runs from the front of a queue, scattered keys,
absent ones, repeats, keys of other groups and keys without a group), every
scan and count afterwards answers as if the keys had been deleted one by one.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actormq.storage.ram import RamStore
from actormq.storage.records import queue_key, queue_prefix

CLIENTS = ("a", "ab", "b")
keys = st.one_of(
    st.builds(queue_key, st.sampled_from(CLIENTS), st.integers(0, 40)),
    st.sampled_from([b"a", b"plain", b"z"]),
)


@given(stored=st.lists(keys, max_size=60), batches=st.lists(st.lists(keys, max_size=30), max_size=4))
def test_delete_many_matches_deleting_one_by_one(stored, batches):
    store = RamStore()
    model: dict[bytes, bytes] = {}
    for key in stored:
        store.put("queue", key, key)
        model[key] = key
    for batch in batches:
        store.delete_many("queue", batch)
        for key in batch:
            model.pop(key, None)
        assert list(store.scan("queue")) == sorted(model.items())
        for client in CLIENTS:
            prefix = queue_prefix(client)
            expected = sorted(k for k in model if k.startswith(prefix))
            assert [k for k, _ in store.scan("queue", prefix)] == expected
            assert store.count("queue", prefix) == len(expected)
    assert store.count("queue") == len(model)


@given(count=st.integers(1, 300), acked=st.integers(0, 300), batch=st.integers(1, 64))
def test_acknowledging_a_queue_in_order_leaves_the_rest_in_order(count, acked, batch):
    store = RamStore()
    rows = [queue_key("a", seq) for seq in range(1, count + 1)]
    for key in rows:
        store.put("queue", key, b"m")
    done = rows[:acked]
    for start in range(0, len(done), batch):
        store.delete_many("queue", done[start:start + batch])
    assert [k for k, _ in store.scan("queue", queue_prefix("a"))] == rows[acked:]
