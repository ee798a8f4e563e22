"""Flow control: publishers held back while a subscriber's queue is congested,
on the subscriber's worker and on every other one, for a bounded time.

A Valve belongs to one congested subscriber. A publisher whose message takes
an online subscriber's queue past its high mark is held (its connection
keeps reading, answers PINGREQ, and holds its other packets in order) until
the queue drains to its low mark, or `queue.max_publisher_hold` passed; then
the valve is overrun: the queue's limit and drop policy decide for every
message (drops counted as `hold_timeout`) and nobody is held for it until the
queue has drained. So no publisher waits longer than the bound for one
message, and a stalled subscriber stops nobody's traffic to other topics for
longer either.

Across workers: a subscriber congested by a peer's messages holds that peer
(a RemotePublisher), which sends it FULL with the subscriber's route filters;
the peer's RemoteValve then holds its own publishers of matching messages
until ROOM comes (the subscriber's valve released) or its own bound passed.
"""

from __future__ import annotations

from actormq.storage.backlog import WriterBacklog
from actormq.transport.topics import TopicTrie, parse_shared


class Valve:
    """The publishers held back for one congested subscriber."""

    __slots__ = ("_loop", "_hold", "_timer", "publishers", "overrun")

    def __init__(self, loop, hold: float) -> None:
        self._loop = loop
        self._hold = hold
        self._timer = None
        self.publishers: set = set()
        self.overrun = False        # a hold timed out: nobody is held until the queue drains

    def block(self, publisher) -> None:
        if self.overrun or publisher in self.publishers:
            return
        if not self._hold:
            self.overrun = True
            return
        self.publishers.add(publisher)
        publisher.hold_back()
        if self._timer is None:
            self._timer = self._loop.call_later(self._hold, self._expired)

    def _expired(self) -> None:
        self._timer = None
        self.overrun = True
        self.release()

    def release(self) -> None:
        """Let every held publisher go on."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        publishers, self.publishers = self.publishers, set()
        for publisher in publishers:
            publisher.go_on()

    def drained(self) -> None:
        """The queue is back at its low mark: hold publishers again when it fills."""
        self.overrun = False
        self.release()


class RemotePublisher:
    """A peer whose messages fill a subscriber's queue here: held by FULL, let go by ROOM."""

    __slots__ = ("_link", "_peer", "_session")

    def __init__(self, link, peer: int, session) -> None:
        self._link = link
        self._peer = peer
        self._session = session

    def hold_back(self) -> None:
        session = self._session
        filters = [parse_shared(topic_filter)[1] for topic_filter in session.subscriptions]
        self._link.bus.send(self._peer, b"FULL", {"w": self._link.worker_id,
                                                  "c": session.client_id, "f": filters})

    def go_on(self) -> None:
        self._link.bus.send(self._peer, b"ROOM", {"w": self._link.worker_id,
                                                  "c": self._session.client_id})


class RemoteValve(Valve):
    """The publishers here held back for a congested subscriber on a peer."""

    __slots__ = ("filters",)

    def __init__(self, loop, hold: float, filters: list) -> None:
        super().__init__(loop, hold)
        self.filters = filters


class RemoteFlow:
    """This worker's view of congested subscribers on its peers."""

    def __init__(self, link) -> None:
        self.link = link
        self.broker = link.broker
        self._valves: dict[tuple[int, str], RemoteValve] = {}
        self._publishers: dict[tuple[int, str], RemotePublisher] = {}
        self.trie = TopicTrie()     # route filter -> {(peer, client id): RemoteValve}

    def hold_peers(self, congested: list, peer: int) -> None:
        """Sessions here that a message from `peer` congested hold that peer back."""
        for session in congested:
            if isinstance(session, WriterBacklog):
                continue    # the peer's publishers wait for this worker's DUR answers
            key = (peer, session.client_id)
            publisher = self._publishers.get(key)
            if publisher is None or publisher._session is not session:
                publisher = self._publishers[key] = RemotePublisher(self.link, peer, session)
            session.block(publisher)

    def on_full(self, header, _payloads) -> None:
        key = (header["w"], header["c"])
        if key in self._valves:
            self._valves[key].overrun = False   # full again after a hold that timed out
            return
        settings = self.broker.settings
        valve = self._valves[key] = RemoteValve(self.broker.loop, settings.max_publisher_hold,
                                                header["f"])
        for route_filter in valve.filters:
            self.trie.add(route_filter, key, valve)
        self.broker.router.remote_valves = self.trie

    def on_room(self, header, _payloads) -> None:
        self._drop((header["w"], header["c"]))

    def _drop(self, key: tuple[int, str]) -> None:
        valve = self._valves.pop(key, None)
        if valve is None:
            return
        for route_filter in valve.filters:
            self.trie.remove(route_filter, key)
        if not self._valves:
            self.broker.router.remote_valves = None
        valve.release()

    def peer_gone(self, peer: int) -> None:
        for key in [key for key in self._valves if key[0] == peer]:
            self._drop(key)
        for key in [key for key in self._publishers if key[0] == peer]:
            del self._publishers[key]
