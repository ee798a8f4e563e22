"""PendingWrites' read overlay against a model: whenever a read comes (before,
between or after batches are taken and settled), `lookup` and `rows` show the
latest write of each key that is not settled yet, and nothing once everything
is settled; `page` gives a scan's page the puts from its floor on and the
deletes. The overlay is built on the first read and dropped when all is
settled, so reads at any point of that cycle are covered; writes come one by
one, as deletes of many keys, and as puts an issuer numbered (add_numbered)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.storage.writer import ROW_OVERHEAD, PendingWrites

KEYS = [b"q/a", b"q/b", b"q/c", b"r/a"]

write = st.tuples(st.just("write"), st.sampled_from(["queue", "retained"]), st.sampled_from(KEYS),
                  st.one_of(st.none(), st.binary(min_size=1, max_size=3)))
deletes = st.tuples(st.just("delete_many"), st.sampled_from(["queue", "retained"]),
                    st.lists(st.sampled_from(KEYS), max_size=3))
numbered = st.tuples(st.just("add_numbered"),
                     st.lists(st.tuples(st.sampled_from(KEYS), st.binary(min_size=1, max_size=3)), max_size=3))
step = st.one_of(write, deletes, numbered, st.just(("take",)), st.just(("settle",)), st.just(("read",)))


def expected(unsettled: list) -> dict:
    """(table, key) -> latest unsettled value (None: a pending delete)."""
    latest: dict = {}
    for _, table, key, value in unsettled:
        latest[(table, key)] = value
    return latest


def check_reads(pending: PendingWrites, unsettled: list) -> None:
    latest = expected(unsettled)
    for table in ("queue", "retained"):
        for key in KEYS:
            found, value = pending.lookup(table, key)
            assert (found, value) == (((table, key) in latest), latest.get((table, key)))
        for prefix in (b"", b"q/"):
            want = sorted((key, value) for (t, key), value in latest.items()
                          if t == table and key.startswith(prefix))
            assert pending.rows(table, prefix) == want
            for floor in (prefix, b"q/b"):
                puts, deleted = pending.page(table, prefix, floor)
                assert puts == [(key, value) for key, value in want if value is not None and key >= floor]
                assert {key for key in deleted if key.startswith(prefix)} == \
                    {key for key, value in want if value is None}


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40), st.integers(min_value=1, max_value=4))
def test_reads_see_the_latest_unsettled_write_of_each_key(steps, commit_batch):
    pending = PendingWrites(commit_batch=commit_batch, max_pending=1000)
    issued: list = []      # every op added, in order
    taken: list = []       # batches taken, not settled, oldest first
    settled = 0            # ops settled so far (a prefix of issued)
    for action in steps:
        if action[0] == "write":
            _, table, key, value = action
            pending.add(table, key, value)
            issued.append((len(issued) + 1, table, key, value))
        elif action[0] == "delete_many":
            _, table, keys = action
            if keys:
                pending.delete_many(table, keys)
            issued += [(len(issued) + n, table, key, None) for n, key in enumerate(keys, 1)]
        elif action[0] == "add_numbered":
            made = [(len(issued) + n, "queue", key, value) for n, (key, value) in enumerate(action[1], 1)]
            pending.add_numbered(lambda first: (made, sum(len(key) + len(value) + ROW_OVERHEAD
                                                          for _, _, key, value in made), b""))
            issued += made
        elif action[0] == "take":
            ops, _ = pending.take(0)
            if ops:
                taken.append(ops)
        elif action[0] == "settle" and taken:
            ops = taken.pop(0)
            pending.settle(ops, set())
            settled = ops[-1][0]
        elif action[0] == "read":
            check_reads(pending, issued[settled:])
    for ops in taken:
        pending.settle(ops, set())
    while True:
        rest, _ = pending.take(0)
        if not rest:
            break
        pending.settle(rest, set())
    check_reads(pending, [])
    assert pending.pending_bytes == 0
