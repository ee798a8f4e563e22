"""The core's side of ``message.deliver`` when a fold does not give a message at once:
a drop, or a hook that waits (VerneMQ's on_deliver webhook). The session's later
deliveries wait behind it, in order; a session whose queue is stored holds them in
that queue, so nothing held is lost if the client or the worker goes away."""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial

from actormq.actors.hooked import dropped
from actormq.actors.messages import Delivery, Message
from actormq.hooks import DROP, DropReason


def not_delivered(session, message: Message, folded, delivery: tuple):
    """A ``message.deliver`` fold did not give a message at once: DROP, or a Future (a hook
    that waits, such as VerneMQ's on_deliver webhook). Then this delivery and every later
    one to the session wait, in order, until it is done; nobody else waits. A session with
    no connection does not wait: what it is sent must be stored before the publisher is
    acknowledged, so it gets the message as published. A session whose queue is stored
    holds its deliveries in that queue (`_hold_queued`). Returns what `Session.deliver` does."""
    if not isinstance(folded, asyncio.Future):
        dropped(session.hooks, session.client_id, message, DropReason.BY_PLUGIN)
        return None
    if session.conn is None:
        folded.cancel()
        return session.deliver_folded(message, *delivery, {})
    if session.queue.persistent:
        return _hold_queued(session, Delivery(message, *delivery), folded)
    session.deliveries_held = deque()
    folded.add_done_callback(lambda done: _deliver_held(session, message, done, delivery))
    return None


def _deliver_held(session, message: Message, done: asyncio.Future, delivery: tuple) -> None:
    held, session.deliveries_held = session.deliveries_held, None
    folded = _folded_or_drop(done)
    if type(folded) is Message:
        session.deliver_folded(folded, *delivery, {})
    else:
        dropped(session.hooks, session.client_id, message, DropReason.BY_PLUGIN)
    for waiting in held:            # a later one that waits again holds the rest behind it
        session.deliver(*waiting, {})


def _folded_or_drop(done: asyncio.Future):
    return DROP if done.cancelled() or done.exception() is not None else done.result()


# A stored queue holds what waits for a deliver hook: each held delivery is queued (written
# to the store, the publisher acknowledged after it, as without a hook) while the session's
# drain waits; a hook's answer changes the queued delivery in place (or takes it out). So a
# client that goes away, or a worker that dies, mid-hold finds the messages in the queue,
# as published when the hook had not answered yet.

def _hold_queued(session, delivery: Delivery, pending: asyncio.Future):
    session.deliveries_held = deque([delivery])
    note = session.enqueue_held(delivery)
    pending.add_done_callback(partial(_queued_answered, session, delivery))
    return note


def hold_queued_next(session, message: Message, qos: int, retain: bool, sub_ids: tuple):
    """A delivery to a session holding its queue: queued behind the held ones, asked later."""
    delivery = Delivery(message, qos, retain, sub_ids)
    session.deliveries_held.append(delivery)
    return session.enqueue_held(delivery)


def _queued_answered(session, delivery: Delivery, done: asyncio.Future) -> None:
    held = session.deliveries_held
    if not held or held[0] is not delivery:
        return                      # the session ended meanwhile
    held.popleft()
    _apply_to_queued(session, delivery, _folded_or_drop(done))
    chain = session.hooks.message_deliver
    while held:
        waiting = held[0]
        folded = waiting.message if chain is None else chain.fold(session.client_id, waiting.message)
        if isinstance(folded, asyncio.Future):
            if session.conn is not None:
                folded.add_done_callback(partial(_queued_answered, session, waiting))
                return
            folded.cancel()         # offline: as published, as `not_delivered` does
            folded = waiting.message
        held.popleft()
        _apply_to_queued(session, waiting, folded)
    session.deliveries_held = None
    session.drain()


def _apply_to_queued(session, delivery: Delivery, folded) -> None:
    if type(folded) is Message:
        delivery.message = folded
        return
    queue = session.queue
    for taken in queue.extract({delivery.seq}):
        queue.discard(taken)
    dropped(session.hooks, session.client_id, delivery.message, DropReason.BY_PLUGIN)
