"""The bus between workers, two Bus objects in one process: frames with an
orjson header and raw payloads arrive intact and in order (also frames larger
than a socket's buffer, and frames sent before the peer listened), a full
outbox drops and counts instead of blocking, a drain can stop early and keep
the rest, `reset` forgets what was queued for a dead peer, a restarted peer
gets what is sent after it came back, and socket or encoding errors come out
as TransportError."""

from __future__ import annotations

import asyncio
import time

import pytest

from actormq.errors import TransportError
from actormq.transport.bus import Bus


class Inbox:
    """Collects the frames one Bus delivers."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes, object, list[bytes]]] = []

    def __call__(self, kind: bytes, header, payloads: list) -> None:
        self.frames.append((kind, header, [bytes(p) for p in payloads]))


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def buses(tmp_path):
    made: list[Bus] = []

    def make(worker_id: int, count: int = 2, hwm: int = 1000) -> Bus:
        bus = Bus(str(tmp_path), worker_id, count, hwm)
        made.append(bus)
        return bus
    yield make
    for bus in made:
        bus.close()


def run_until(loop, condition, timeout: float = 3.0) -> None:
    async def wait() -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "nothing arrived"
            await asyncio.sleep(0.005)
    loop.run_until_complete(wait())


def test_frames_arrive_with_header_and_raw_payloads(loop, buses):
    first, second = buses(0), buses(1)
    inbox0, inbox1 = Inbox(), Inbox()
    first.start(loop, inbox0)
    second.start(loop, inbox1)
    payload = bytes(range(256)) * 10
    assert first.send(1, b"PUB", {"m": ["a/b", 1], "share": None}, (payload, b""))
    assert second.send(0, b"ROUTE", {"w": 1, "f": "a/#", "d": 1})
    run_until(loop, lambda: inbox0.frames and inbox1.frames)
    assert inbox1.frames == [(b"PUB", {"m": ["a/b", 1], "share": None}, [payload, b""])]
    assert inbox0.frames == [(b"ROUTE", {"w": 1, "f": "a/#", "d": 1}, [])]
    assert first.frames_sent == {1: 1} and first.frames_dropped == 0


def test_frames_keep_their_order_and_broadcast_reaches_every_peer(loop, buses):
    sender = buses(0, count=3)
    inboxes = [Inbox(), Inbox()]
    for worker_id, inbox in zip((1, 2), inboxes):
        buses(worker_id, count=3).start(loop, inbox)
    sender.start(loop, Inbox())
    for number in range(100):
        sender.broadcast(b"N", number)
    sender.broadcast(b"ONLY2", None, peers=[2])
    run_until(loop, lambda: all(len(inbox.frames) >= 100 for inbox in inboxes)
              and len(inboxes[1].frames) == 101)
    for inbox in inboxes:
        assert [header for kind, header, _ in inbox.frames if kind == b"N"] == list(range(100))
    assert [kind for kind, _, _ in inboxes[0].frames].count(b"ONLY2") == 0


def test_a_full_outbox_drops_and_counts_without_blocking(loop, buses):
    sender = buses(0, hwm=10)          # worker 1 never comes up: nothing drains
    sender.start(loop, Inbox())
    started = time.monotonic()
    sent = sum(sender.send(1, b"PUB", {"n": n}, (b"x" * 100,)) for n in range(1000))
    assert time.monotonic() - started < 1.0
    assert 0 < sent <= 20
    assert sender.frames_dropped == 1000 - sent
    assert sender.frames_sent == {1: sent}


def test_reset_forgets_what_was_queued_for_a_dead_peer(loop, buses):
    sender = buses(0)
    sender.start(loop, Inbox())
    for number in range(5):
        sender.send(1, b"STALE", number)
    sender.reset(1)
    sender.send(1, b"FRESH", 0)
    inbox = Inbox()
    buses(1).start(loop, inbox)
    run_until(loop, lambda: inbox.frames)
    loop.run_until_complete(asyncio.sleep(0.1))
    assert [kind for kind, _, _ in inbox.frames] == [b"FRESH"]


def test_a_frame_to_an_unknown_worker_is_not_sent(loop, buses):
    sender = buses(0)
    sender.start(loop, Inbox())
    assert not sender.send(7, b"PUB", {})
    assert sender.peers == [1]


def test_an_inbox_that_cannot_be_bound_is_a_transport_error(tmp_path):
    with pytest.raises(TransportError, match="bus of worker 0"):
        Bus(str(tmp_path / "missing" / "dir"), 0, 2)


def test_a_header_orjson_cannot_encode_is_a_transport_error(loop, buses):
    sender = buses(0)
    sender.start(loop, Inbox())
    with pytest.raises(TransportError, match="cannot be encoded"):
        sender.send(1, b"PUB", {"raw": b"bytes"})


def test_drain_can_stop_early_and_keeps_the_rest(loop, buses):
    sender, receiver = buses(0), buses(1)
    sender.start(loop, Inbox())
    inbox = Inbox()
    receiver._on_frame = inbox          # not started: this test drives the inbox by hand
    for number in range(10):
        sender.send(1, b"N", number)
    time.sleep(0.3)                     # the io thread moves them into the inbox
    assert not receiver.drain(at_most=4), "the inbox should still hold frames"
    assert len(inbox.frames) == 4
    assert receiver.drain()
    assert [header for _, header, _ in inbox.frames] == list(range(10))


def test_frames_sent_soon_travel_as_one_and_keep_their_order_with_frames_sent_at_once(loop, buses):
    """Frames sent soon in one loop turn are one ZeroMQ message; a frame sent at
    once to the same peer goes after them."""
    first, second = buses(0), buses(1)
    inbox = Inbox()
    first.start(loop, Inbox())
    second.start(loop, inbox)
    assert first.send_soon(1, b"REG", {"c": "a"})
    assert first.send_soon(1, b"UNREG", {"c": "b"})
    assert first.send(1, b"NOW", 1)
    first.send_soon(1, b"REG", {"c": "c"})
    first.send_soon(1, b"REG", {"c": "d"})
    run_until(loop, lambda: len(inbox.frames) >= 5)
    assert inbox.frames == [(b"REG", {"c": "a"}, []), (b"UNREG", {"c": "b"}, []),
                            (b"NOW", 1, []), (b"REG", {"c": "c"}, []), (b"REG", {"c": "d"}, [])]
    assert first.frames_sent == {1: 3}      # two batches and the frame sent at once
    assert not first.send_soon(5, b"REG", {"c": "e"})


def test_items_sent_soon_one_after_another_travel_in_one_frame_in_their_order(loop, buses):
    """Items of one kind sent soon to a peer one after another are one frame
    (header: the sender and the items); a frame between them starts a new one."""
    first, second = buses(0), buses(1)
    inbox = Inbox()
    first.start(loop, Inbox())
    second.start(loop, inbox)
    assert first.send_soon_item(1, b"REGS", ["a", 1, 0.5])
    assert first.send_soon_item(1, b"REGS", ["b", 2, 0.75])
    first.send_soon(1, b"REGD", {"c": "c"})
    first.send_soon_item(1, b"REGS", ["d", 3, 1.0])
    first.send_soon_item(1, b"OTHER", 4)
    run_until(loop, lambda: len(inbox.frames) >= 4)
    assert inbox.frames == [(b"REGS", {"w": 0, "i": [["a", 1, 0.5], ["b", 2, 0.75]]}, []),
                            (b"REGD", {"c": "c"}, []), (b"REGS", {"w": 0, "i": [["d", 3, 1.0]]}, []),
                            (b"OTHER", {"w": 0, "i": [4]}, [])]
    assert first.frames_sent == {1: 1}      # one batch
    first.send_soon_item(1, b"REGS", ["e", 5, 1.5])
    assert first.send(1, b"NOW", 1)         # takes the item along first
    run_until(loop, lambda: len(inbox.frames) >= 6)
    assert inbox.frames[4:] == [(b"REGS", {"w": 0, "i": [["e", 5, 1.5]]}, []), (b"NOW", 1, [])]
    assert not first.send_soon_item(5, b"REGS", ["f", 6, 2.0])


def test_frames_sent_later_wait_for_each_other_and_keep_their_order(loop, buses):
    """Frames sent later in several loop turns travel as one ZeroMQ message
    within LATER_SECONDS; a frame sent soon or at once to the same peer takes
    them along first."""
    first, second = buses(0), buses(1)
    inbox = Inbox()
    first.start(loop, Inbox())
    second.start(loop, inbox)
    assert first.send_later(1, b"REG", {"c": "a"})
    loop.run_until_complete(asyncio.sleep(0))
    assert first.send_later(1, b"UNREG", {"c": ["b"]})
    run_until(loop, lambda: len(inbox.frames) >= 2)
    assert inbox.frames == [(b"REG", {"c": "a"}, []), (b"UNREG", {"c": ["b"]}, [])]
    assert first.frames_sent == {1: 1}
    first.send_later(1, b"REG", {"c": "c"})
    first.send_soon(1, b"REGD", {"c": "d"})
    first.send_later(1, b"REG", {"c": "e"})
    first.send(1, b"NOW", 1)
    run_until(loop, lambda: len(inbox.frames) >= 6)
    assert [kind for kind, _, _ in inbox.frames[2:]] == [b"REG", b"REGD", b"REG", b"NOW"]
    assert first.frames_sent == {1: 3}      # the batch went with the frame sent at once
    assert not first.send_later(5, b"REG", {"c": "f"})


def test_a_frame_larger_than_the_socket_buffer_arrives_whole_and_in_order(loop, buses):
    first, second = buses(0), buses(1)
    inbox = Inbox()
    first.start(loop, Inbox())
    second.start(loop, inbox)
    big = bytes(range(256)) * 16384         # 4 MiB: many partial writes
    assert first.send(1, b"BIG", {"n": 0}, (big,))
    assert first.send(1, b"AFTER", {"n": 1})
    run_until(loop, lambda: len(inbox.frames) >= 2, timeout=10)
    assert inbox.frames == [(b"BIG", {"n": 0}, [big]), (b"AFTER", {"n": 1}, [])]


def test_frames_sent_before_the_peer_listens_arrive_once_it_does(loop, buses):
    sender = buses(0)
    sender.start(loop, Inbox())
    for number in range(5):
        assert sender.send(1, b"EARLY", number)
    inbox = Inbox()
    buses(1).start(loop, inbox)
    run_until(loop, lambda: len(inbox.frames) >= 5)
    assert [header for _, header, _ in inbox.frames] == list(range(5))


def test_a_restarted_peer_gets_what_is_sent_after_it_came_back(loop, buses, tmp_path):
    sender, old = buses(0), buses(1)
    sender.start(loop, Inbox())
    old_inbox = Inbox()
    old.start(loop, old_inbox)
    sender.send(1, b"N", 0)
    run_until(loop, lambda: old_inbox.frames)
    old.close()                             # the peer died
    sender.send(1, b"LOST", 1)              # to the dead peer's connection, or waiting
    sender.reset(1)
    new_inbox = Inbox()
    buses(1).start(loop, new_inbox)
    for number in range(2, 5):
        sender.send(1, b"N", number)
    run_until(loop, lambda: len(new_inbox.frames) >= 3)
    assert [header for _, header, _ in new_inbox.frames] == [2, 3, 4]


def test_no_timer_wakes_a_bus_whose_peers_listen(loop, buses):
    """The retry timer runs only while frames wait for a peer that is not
    listening: an idle worker's loop has nothing to wake for."""
    sender = buses(0)
    sender.start(loop, Inbox())
    loop.run_until_complete(asyncio.sleep(0.12))
    sender.send(1, b"EARLY", 0)         # worker 1 does not listen yet: retried
    assert sender._timer is not None
    inbox = Inbox()
    buses(1).start(loop, inbox)
    run_until(loop, lambda: inbox.frames)
    loop.run_until_complete(asyncio.sleep(0.12))
    assert sender._timer is None
    sender.send(1, b"LATE", 1)
    run_until(loop, lambda: len(inbox.frames) == 2)
    assert [kind for kind, _, _ in inbox.frames] == [b"EARLY", b"LATE"]
    assert sender._timer is None
