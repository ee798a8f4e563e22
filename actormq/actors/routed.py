"""Routed: what routing one message did, as a value the caller reads.

`Router.route` and `Broker.publish` return one: how many deliveries it made
(`delivered`), whether a delivery wrote to this worker's disc store
(`durable`) and which peers' durability answers it waits for (`acks`, see
durability) — together `pending`: the publisher's PUBACK/PUBREC waits for
`Broker.when_durable(routed.acks, ...)` — whether a full queue refused it
(`quota_exceeded`) and the congested parties it reached (`congested`: each
has `block(publisher)`, see flow and storage.backlog).

The common outcome — delivered, nothing pending — allocates nothing: a
plain count comes back as a shared `Routed` from a table (`delivered(n)`),
and so does a count of deliveries that wrote to a disc store.
A delivery that has something to say returns a note (a `Routed` of its
own, usually a shared constant such as `WROTE_DURABLE`), and the router
joins the notes of one message (`join`). A `Routed` is never changed.
"""

from __future__ import annotations


class Routed:
    """The outcome of routing one message."""

    __slots__ = ("delivered", "durable", "acks", "quota_exceeded", "congested", "pending")

    def __init__(self, delivered: int = 0, durable: bool = False, acks: tuple = (),
                 quota_exceeded: bool = False, congested: tuple = ()) -> None:
        self.delivered = delivered
        self.durable = durable
        self.acks = acks
        self.quota_exceeded = quota_exceeded
        self.congested = congested
        self.pending = durable or bool(acks)   # an acknowledgement waits for a commit

    def counted(self, deliveries: int) -> Routed:
        """This note with `deliveries` more deliveries."""
        if not deliveries:
            return self
        if self is WROTE_DURABLE and deliveries < len(DURABLE_COUNTS):
            return DURABLE_COUNTS[deliveries]
        return Routed(self.delivered + deliveries, self.durable, self.acks, self.quota_exceeded,
                      self.congested)

    def __repr__(self) -> str:
        return (f"Routed(delivered={self.delivered}, durable={self.durable}, acks={self.acks}, "
                f"quota_exceeded={self.quota_exceeded}, congested={len(self.congested)})")


COUNTS = tuple(Routed(n) for n in range(256))    # COUNTS[n]: n plain deliveries
NOT_DELIVERED = COUNTS[0]
WROTE_DURABLE = Routed(durable=True)
DURABLE_COUNTS = tuple(Routed(n, durable=True) for n in range(256))  # WROTE_DURABLE.counted(n)
QUEUE_FULL = Routed(quota_exceeded=True)


def delivered(count: int) -> Routed:
    """The shared outcome of `count` plain deliveries."""
    return COUNTS[count] if count < 256 else Routed(count)


def join(first, second):
    """Two partial outcomes of one message as one: each is a count (int) or a
    Routed; ints stay ints, so the common case allocates nothing."""
    if type(first) is int:
        if type(second) is int:
            return first + second
        return second.counted(first)
    if type(second) is int:
        return first.counted(second)
    if first is second and not (first.delivered or first.acks or first.congested):
        return first        # the same constant note twice (two offline subscribers)
    return Routed(first.delivered + second.delivered, first.durable or second.durable,
                  first.acks + second.acks, first.quota_exceeded or second.quota_exceeded,
                  first.congested + second.congested)


def outcome(partial) -> Routed:
    """The Routed of a partial outcome (a count or a Routed)."""
    return delivered(partial) if type(partial) is int else partial


def congestion(parties: tuple) -> Routed:
    """A note: these congested parties hold the publisher back."""
    return Routed(congested=parties)


def awaiting(ack_id: int) -> Routed:
    """A note: a peer's durability answer for ack_id is awaited."""
    return Routed(acks=(ack_id,))


def forwarded(ack_id: int) -> Routed:
    """One delivery on a peer, whose durability answer for ack_id is awaited
    (`awaiting(ack_id).counted(1)`, in one allocation: one per message that
    another worker's disc session takes)."""
    return Routed(1, False, (ack_id,))
