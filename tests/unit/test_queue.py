"""The Queue's decision logic without a broker: delivery order (fifo / lifo), the
online and offline limits with both drop policies, the rows it writes and
deletes, reloading after a restart, a store that refuses rows, and the
disc_only window that reads a long backlog back from the store once."""

from __future__ import annotations

import pytest

from actormq.actors.messages import Delivery, Message
from actormq.actors.queue import Queue, QueueFull, QueueLimits
from actormq.errors import StorageFullError
from actormq.storage.lmdb_store import LmdbStore
from actormq.storage.ram import RamStore
from actormq.storage.records import decode_message, queue_prefix, split_queue_key

UNLIMITED = QueueLimits(max_online=0, max_offline=0)


def delivery(n: int, qos: int = 1, retain: bool = False, sub_ids: tuple = ()) -> Delivery:
    return Delivery(Message("t", str(n).encode(), qos, retain, {}, None, 1700000000.0 + n, "p"),
                    qos, retain, sub_ids)


def numbers(deliveries) -> list[int]:
    return [int(d.message.payload) for d in deliveries]


def pop_all(queue: Queue) -> list[int]:
    popped = []
    while (d := queue.pop()) is not None:
        popped.append(d)
    return numbers(popped)


def stored_seqs(store, client_id: str = "c") -> list[int]:
    return [split_queue_key(key)[1] for key, _ in store.scan("queue", queue_prefix(client_id))]


def filled(limits: QueueLimits, count: int, store=None, online: bool = False, **options) -> Queue:
    queue = Queue("c", limits, store, **options)
    queue.online = online
    for n in range(count):
        queue.enqueue(delivery(n))
    return queue


class RefusingStore(RamStore):
    """A RamStore that refuses queue rows while `full` is set, as a full LMDB does."""

    full = False

    def put(self, table: str, key: bytes, value: bytes) -> None:
        if self.full and table == "queue":
            raise StorageFullError("the store is full")
        super().put(table, key, value)


class CountingStore(RamStore):
    """A RamStore that counts the queue rows its scans hand out."""

    rows_read = 0

    def scan(self, table, prefix=b"", start=None):
        for row in super().scan(table, prefix, start):
            self.rows_read += 1
            yield row


# --- order ------------------------------------------------------------------------

def test_fifo_delivers_oldest_first():
    assert pop_all(filled(UNLIMITED, 5)) == [0, 1, 2, 3, 4]


def test_lifo_delivers_newest_first():
    assert pop_all(filled(QueueLimits(0, 0, lifo=True), 5)) == [4, 3, 2, 1, 0]


@pytest.mark.parametrize("lifo", [False, True])
def test_push_front_keeps_the_delivery_next(lifo):
    queue = filled(QueueLimits(0, 0, lifo=lifo), 3)
    first = queue.pop()
    queue.push_front(first)
    assert queue.pop() is first and len(queue) == 2


def test_empty_queue_pops_none():
    queue = Queue("c", UNLIMITED)
    assert queue.pop() is None and len(queue) == 0 and not queue


# --- limits -----------------------------------------------------------------------

def test_full_queue_drops_the_newest_by_default():
    queue = filled(QueueLimits(max_online=10, max_offline=3), 3)
    assert queue.enqueue(delivery(3)) is False
    assert queue.dropped == 1 and pop_all(queue) == [0, 1, 2]


def test_full_queue_dropping_the_oldest_evicts_it():
    store = RamStore()
    queue = filled(QueueLimits(max_online=10, max_offline=3, drop_oldest=True), 3, store)
    assert queue.enqueue(delivery(3)) is True
    assert queue.dropped == 1
    assert stored_seqs(store) == [2, 3, 4], "the evicted message's row must be deleted"
    assert pop_all(queue) == [1, 2, 3]


def test_lifo_dropping_the_oldest_still_evicts_the_oldest():
    queue = filled(QueueLimits(0, 3, lifo=True, drop_oldest=True), 4)
    assert pop_all(queue) == [3, 2, 1]


@pytest.mark.parametrize("online, kept", [(True, 5), (False, 2)])
def test_the_limit_follows_the_online_flag(online, kept):
    queue = filled(QueueLimits(max_online=5, max_offline=2), 8, online=online)
    assert len(queue) == kept and queue.dropped == 8 - kept


def test_going_offline_keeps_what_is_queued_but_takes_no_more():
    queue = filled(QueueLimits(max_online=5, max_offline=2), 4, online=True)
    queue.online = False
    assert queue.enqueue(delivery(4)) is False
    assert pop_all(queue) == [0, 1, 2, 3]


@pytest.mark.parametrize("online", [True, False])
def test_zero_means_unlimited(online):
    queue = filled(UNLIMITED, 5000, online=online)
    assert len(queue) == 5000 and queue.dropped == 0


# --- persistence --------------------------------------------------------------------

def test_qos1_and_qos2_are_written_and_qos0_is_not():
    store = RamStore()
    queue = Queue("c", UNLIMITED, store)
    for n, qos in enumerate([0, 1, 2, 0]):
        queue.enqueue(delivery(n, qos))
    assert stored_seqs(store) == [2, 3]
    assert queue.enqueue_wrote_durable(delivery(9, 1)) is False, "a ram store is not durable"
    assert Queue("c", UNLIMITED, store, durable=True).enqueue_wrote_durable(delivery(9, 1))
    assert not Queue("c", UNLIMITED, store, durable=True).enqueue_wrote_durable(delivery(9, 0))


def test_a_row_keeps_the_delivered_qos_retain_flag_and_subscription_ids():
    store = RamStore()
    queue = Queue("c", UNLIMITED, store)
    message = Message("t", b"x", 2, False, {"content_type": "a"}, None, 1.0, "p")
    queue.enqueue(Delivery(message, 1, True, (7, 9)))
    [(_, value)] = store.scan("queue", queue_prefix("c"))
    message, _ = decode_message(value)
    assert (message.qos, message.retain, message.properties["subscription_identifier"]) == (1, True, [7, 9])
    [back] = pop_all_deliveries(reloaded(store))
    assert (back.qos, back.retain, back.subscription_ids) == (1, True, (7, 9))
    assert back.message.properties == {"content_type": "a"}


def pop_all_deliveries(queue: Queue) -> list[Delivery]:
    popped = []
    while (d := queue.pop()) is not None:
        popped.append(d)
    return popped


def reloaded(store, limits: QueueLimits = UNLIMITED, **options) -> Queue:
    queue = Queue("c", limits, store, **options)
    queue.load()
    return queue


def test_discard_deletes_the_row_of_an_acknowledged_delivery():
    store = RamStore()
    queue = filled(UNLIMITED, 3, store)
    sent = queue.pop()
    assert stored_seqs(store) == [1, 2, 3], "a delivery in flight keeps its row"
    queue.discard(sent)
    assert stored_seqs(store) == [2, 3]


def scheduled(store, count: int) -> tuple[Queue, list]:
    """A queue whose deletes wait for a flush, as the broker runs it; and the
    list of its flush requests."""
    requests: list = []
    queue = filled(UNLIMITED, count, store, schedule=requests.append)
    return queue, requests


def test_discards_are_deleted_together_at_the_flush_asked_for_once():
    store = RamStore()
    queue, requests = scheduled(store, 4)
    for _ in range(3):
        queue.discard(queue.pop())
    assert requests == [queue], "one flush request for the whole batch"
    assert stored_seqs(store) == [1, 2, 3, 4], "nothing is deleted before the flush"
    queue.flush()
    assert stored_seqs(store) == [4]
    queue.discard(queue.pop())
    assert requests == [queue, queue], "a new batch asks again"
    queue.flush()
    queue.flush()
    assert stored_seqs(store) == []


def test_forget_and_load_flush_the_discards_first():
    store = RamStore()
    queue, _ = scheduled(store, 3)
    queue.discard(queue.pop())
    queue.forget()
    assert stored_seqs(store) == [2, 3], "the next owner must not redeliver an acknowledged one"
    queue, _ = scheduled(store, 0)
    queue.load()
    queue.discard(queue.pop())
    queue.load()
    assert pop_all(queue) == [2] and stored_seqs(store) == [3]


def test_clear_drops_the_discards_a_new_queue_could_collide_with():
    store = RamStore()
    old, _ = scheduled(store, 2)
    old.discard(old.pop())
    old.clear()
    new = filled(UNLIMITED, 1, store)  # a new session's queue starts at seq 1 again
    old.flush()                        # the round's flush comes after
    assert stored_seqs(store) == [1] and pop_all(new) == [0]


def test_clear_deletes_every_row_of_the_client_only():
    store = RamStore()
    filled(UNLIMITED, 2, store)
    other = Queue("other", UNLIMITED, store)
    other.enqueue(delivery(0))
    queue = reloaded(store)
    queue.clear()
    assert len(queue) == 0 and stored_seqs(store) == [] and stored_seqs(store, "other") == [1]


def test_forget_keeps_the_rows_for_the_next_owner():
    store = RamStore()
    queue = filled(UNLIMITED, 3, store)
    queue.forget()
    assert len(queue) == 0 and stored_seqs(store) == [1, 2, 3]


def test_load_after_reopen_restores_order_and_continues_the_sequence(tmp_path):
    store = LmdbStore(str(tmp_path))
    queue = filled(UNLIMITED, 5, store)
    queue.discard(queue.pop())
    store.close()
    store = LmdbStore(str(tmp_path))
    try:
        queue = reloaded(store)
        assert len(queue) == 4
        queue.enqueue(delivery(5))
        assert stored_seqs(store) == [2, 3, 4, 5, 6], "new rows must not reuse a sequence number"
        assert pop_all(queue) == [1, 2, 3, 4, 5]
    finally:
        store.close()


def test_a_refused_row_raises_queue_full_and_changes_nothing():
    store = RefusingStore()
    queue = filled(QueueLimits(0, 2, drop_oldest=True), 2, store)
    store.full = True
    with pytest.raises(QueueFull):
        queue.enqueue(delivery(2))
    assert len(queue) == 2 and queue.dropped == 0 and stored_seqs(store) == [1, 2], \
        "a refused message must not evict an older one"
    store.full = False
    queue.online = True
    queue.enqueue(delivery(3))
    assert stored_seqs(store) == [1, 2, 3] and pop_all(queue) == [0, 1, 3]


def test_a_store_refusal_does_not_stop_qos0_in_memory():
    store = RefusingStore()
    store.full = True
    queue = Queue("c", UNLIMITED, store)
    assert queue.enqueue(delivery(0, qos=0)) is True and len(queue) == 1


# --- disc_only: the window ------------------------------------------------------------

def test_window_holds_at_most_its_size_in_memory_and_everything_in_the_store():
    store = RamStore()
    queue = filled(UNLIMITED, 25, store, window=10)
    assert len(queue) == 25 and len(queue.snapshot()) == 10
    assert stored_seqs(store) == list(range(1, 26))


def test_window_mode_persists_qos0_too():
    store = RamStore()
    queue = Queue("c", UNLIMITED, store, window=10)
    queue.enqueue(delivery(0, qos=0))
    assert stored_seqs(store) == [1]


@pytest.mark.parametrize("acknowledge", [True, False])
def test_window_refills_in_order_without_duplicates(acknowledge):
    """Deliveries in flight keep their rows: a refill must start after them."""
    store = RamStore()
    queue = filled(UNLIMITED, 95, store, window=10)
    popped = []
    while (d := queue.pop()) is not None:
        popped.append(d)
        assert len(queue.snapshot()) <= 10
        if acknowledge:
            queue.discard(d)
    assert numbers(popped) == list(range(95)) and len(queue) == 0


def test_window_reads_each_row_of_a_long_backlog_once():
    store = CountingStore()
    queue = filled(UNLIMITED, 2000, store, window=10)
    assert pop_all(queue) == list(range(2000))  # nothing acknowledged: every row stays
    assert store.rows_read <= 2000 + 200, f"{store.rows_read} rows read for 2000 messages"


def test_window_after_reopen_loads_the_window_then_refills(tmp_path):
    store = LmdbStore(str(tmp_path))
    filled(UNLIMITED, 2500, store, window=1000)
    store.close()
    store = LmdbStore(str(tmp_path))
    try:
        queue = reloaded(store, window=1000)
        assert len(queue) == 2500 and len(queue.snapshot()) == 1000
        queue.enqueue(delivery(2500))
        assert pop_all(queue) == list(range(2501))
    finally:
        store.close()


def test_window_with_drop_oldest_evicts_from_the_front():
    store = RamStore()
    queue = filled(QueueLimits(0, 15, drop_oldest=True), 20, store, window=4)
    assert pop_all(queue) == list(range(5, 20))
    assert stored_seqs(store) == list(range(6, 21))


def test_window_queue_empty_after_rows_vanished_reports_empty():
    """Rows deleted behind the queue's back (another owner) leave no phantom backlog."""
    store = RamStore()
    queue = filled(UNLIMITED, 30, store, window=10)
    store.delete_prefix("queue", queue_prefix("c"))
    assert pop_all(queue) == list(range(10))
    assert len(queue) == 0


def test_lifo_never_uses_the_window():
    store = RamStore()
    queue = filled(QueueLimits(0, 0, lifo=True), 30, store, window=10)
    assert len(queue.snapshot()) == 30 and pop_all(queue)[:3] == [29, 28, 27]
