"""The PUB frames a worker sends a peer (actors/forwarding.py): one per loop
turn, cut at MAX_BATCH messages, and at ASKED_BATCH messages whose
publishers wait for the peer's answer, so that the peer starts on those while
the rest of the turn is routed."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from actormq.actors.forwarding import ASKED_BATCH, MAX_BATCH, Forwarding
from actormq.actors.messages import Message

PEER = 1


class RecordingBus:
    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes, dict]] = []

    def send(self, peer: int, kind: bytes, header: dict, payloads=()) -> bool:
        self.frames.append((peer, kind, header))
        return True

    def sizes(self) -> list[int]:
        return [len(header["b"]) for _, kind, header in self.frames if kind == b"PUB"]


class Acks:
    """A peer holding disc sessions: every QoS 1/2 message to it asks for an answer."""

    wanted = True

    def __init__(self) -> None:
        self.asking = {PEER}
        self._ids = itertools.count(1)

    def ack_for(self, worker_id: int) -> int:
        return next(self._ids)


def forwarding() -> tuple[Forwarding, RecordingBus, list]:
    bus = RecordingBus()
    turn_end: list = []
    broker = SimpleNamespace(stats=SimpleNamespace(bus_publish_frames=0, bus_durable_asks=0),
                             loop=SimpleNamespace(call_soon=turn_end.append))
    link = SimpleNamespace(broker=broker, acks=Acks(), live={PEER}, bus=bus, worker_id=0)
    return Forwarding(link), bus, turn_end


def send(forward: Forwarding, count: int, qos: int) -> list:
    return [forward.send_message(PEER, Message("t/1", b"%d" % n, qos), None) for n in range(count)]


def test_messages_that_ask_for_answers_go_in_frames_of_asked_batch_within_the_turn():
    forward, bus, turn_end = forwarding()
    acks = send(forward, 1 + 2 * ASKED_BATCH + 10, qos=1)
    assert None not in acks
    # the first goes alone (the peer got nothing for a while), then a frame per ASKED_BATCH
    assert bus.sizes() == [1, ASKED_BATCH, ASKED_BATCH]
    turn_end[0]()
    assert bus.sizes() == [1, ASKED_BATCH, ASKED_BATCH, 10]
    sent = [item[9] for _, kind, header in bus.frames for item in header["b"]]
    assert sent == acks     # in order, each with its ack id


def test_messages_that_ask_nothing_wait_for_the_end_of_the_turn_up_to_max_batch():
    forward, bus, turn_end = forwarding()
    send(forward, 1 + MAX_BATCH + 20, qos=0)
    assert bus.sizes() == [1, MAX_BATCH]
    turn_end[0]()
    assert bus.sizes() == [1, MAX_BATCH, 20]
