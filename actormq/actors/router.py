"""The Router: one per worker. Owns the topic trie of this worker's subscribers
(filter → sessions), the shared-subscription groups, and the route table of
the other workers (filter → worker ids) replicated from their route deltas.

Takes: subscribe / unsubscribe from local sessions, route deltas and snapshots
from peers, and messages to route. Sends: deliveries to local sessions (direct
calls on the worker's loop) and exactly one bus frame per other worker that
has a matching route — fan-out happens at the destination. Routing returns
its outcome (`routed.Routed`): the deliveries' notes (durable writes, a full
queue, congestion) and the peers' ack ids joined; plain counts inside.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

from actormq.actors import routed
from actormq.actors.messages import Message, SubOptions
from actormq.actors.routed import COUNTS, DURABLE_COUNTS, WROTE_DURABLE, Routed, join
from actormq.transport.topics import TopicTrie, parse_shared


class SharedGroup:
    """The members of one `$share/{group}/{filter}` subscription on this worker."""

    __slots__ = ("members", "_cursor")

    def __init__(self) -> None:
        self.members: dict[str, SubOptions] = {}
        self._cursor = itertools.count()

    def pick(self, online: Callable[[str], bool]) -> tuple[str, SubOptions] | None:
        """Round robin over the members, preferring those that are online."""
        if not self.members:
            return None
        items = list(self.members.items())
        start = next(self._cursor) % len(items)
        ordered = items[start:] + items[:start]
        for client_id, opts in ordered:
            if online(client_id):
                return client_id, opts
        return ordered[0]


class Router:
    """Matches topic names to subscribers, here and on the other workers."""

    def __init__(self, worker_id: int, sessions: Mapping, send_to_worker: Callable | None = None,
                 on_route_change: Callable | None = None, forwarders: Mapping | None = None) -> None:
        self.worker_id = worker_id
        self._sessions = sessions
        self._forwarders = forwarders if forwarders is not None else {}
        self._local = TopicTrie()      # filter -> {client_id: SubOptions}
        self._shared = TopicTrie()     # filter -> {group: SharedGroup}
        self._remote = TopicTrie()     # filter -> {worker_id: route count}
        self._remote_shared = TopicTrie()  # filter -> {(group, worker_id): route count}
        self._share_cursor = itertools.count()
        self._send_to_worker = send_to_worker
        self._on_route_change = on_route_change
        self.subscription_count = 0
        self.remote_valves = None      # TopicTrie of held routes to congested peers (flow)

    # -- subscriptions of local sessions ------------------------------------

    def subscribe(self, client_id: str, topic_filter: str, opts: SubOptions,
                  announce: bool = True) -> bool:
        """Add or replace a subscription; True when it is new for this client.
        Without announce, the other workers learn of it otherwise (a MOVE)."""
        if opts.share_group is not None:
            groups = self._shared.get(topic_filter)
            group = groups.get(opts.share_group)
            if group is None:
                group = SharedGroup()
                self._shared.add(topic_filter, opts.share_group, group)
            is_new = client_id not in group.members
            group.members[client_id] = opts
            route_filter = f"$share/{opts.share_group}/{topic_filter}"
        else:
            is_new = client_id not in self._local.get(topic_filter)
            self._local.add(topic_filter, client_id, opts)
            route_filter = topic_filter
        if is_new:
            self.subscription_count += 1
            if announce and self._on_route_change is not None:
                self._on_route_change(route_filter, +1)
        return is_new

    def unsubscribe(self, client_id: str, topic_filter: str, share_group: str | None = None,
                    announce: bool = True) -> bool:
        """Remove a subscription; True when it existed."""
        if share_group is not None:
            group = self._shared.get(topic_filter).get(share_group)
            if group is None or group.members.pop(client_id, None) is None:
                return False
            if not group.members:
                self._shared.remove(topic_filter, share_group)
            route_filter = f"$share/{share_group}/{topic_filter}"
        else:
            if client_id not in self._local.get(topic_filter):
                return False
            self._local.remove(topic_filter, client_id)
            route_filter = topic_filter
        self.subscription_count -= 1
        if announce and self._on_route_change is not None:
            self._on_route_change(route_filter, -1)
        return True

    def local_filters(self) -> dict[str, int]:
        """Every filter this worker has subscribers for, with its subscriber count
        (shared ones as `$share/{group}/{filter}`): the snapshot peers ask for."""
        routes: dict[str, int] = {}
        for topic_filter in self._local.filters():
            routes[topic_filter] = len(self._local.get(topic_filter))
        for topic_filter in self._shared.filters():
            for group_name, group in self._shared.get(topic_filter).items():
                routes[f"$share/{group_name}/{topic_filter}"] = len(group.members)
        return routes

    # -- routes of other workers ---------------------------------------------

    def add_remote_route(self, worker_id: int, route_filter: str) -> None:
        trie, route_filter, key = self._remote_slot(worker_id, route_filter)
        counts = trie.get(route_filter)
        if key in counts:
            counts[key] += 1
        else:
            trie.add(route_filter, key, 1)

    def remove_remote_route(self, worker_id: int, route_filter: str) -> None:
        trie, route_filter, key = self._remote_slot(worker_id, route_filter)
        counts = trie.get(route_filter)
        if key not in counts:
            return
        counts[key] -= 1
        if counts[key] <= 0:
            trie.remove(route_filter, key)

    def _remote_slot(self, worker_id: int, route_filter: str):
        group, real_filter = parse_shared(route_filter)
        if group is None:
            return self._remote, route_filter, worker_id
        return self._remote_shared, real_filter, (group, worker_id)

    def drop_worker_routes(self, worker_id: int) -> None:
        for trie in (self._remote, self._remote_shared):
            for route_filter in list(trie.filters()):
                for key in [k for k in trie.get(route_filter)
                            if k == worker_id or (isinstance(k, tuple) and k[1] == worker_id)]:
                    trie.remove(route_filter, key)

    def remote_workers_for(self, topic_name: str) -> set[int]:
        """The other workers that have at least one non-shared subscriber for the topic."""
        workers: set[int] = set()
        for _route_filter, counts in self._remote.match(topic_name):
            workers.update(counts)
        return workers

    # -- routing --------------------------------------------------------------

    def route(self, message: Message, from_peer: bool = False, share_target=None) -> Routed:
        """Deliver a message to every matching subscriber; returns the outcome.
        A message from a peer is delivered here only: to the local plain
        subscribers, or, with `share_target` (group, filter), to one local
        member of that shared group (the sending worker chose this worker)."""
        if share_target is not None:
            return routed.outcome(self._deliver_to_group(message, *share_target))
        result = self._deliver_local(message, from_peer)
        if not from_peer:
            if self._shared or self._remote_shared:
                result = join(result, self._deliver_shared(message))
            if self._remote:
                result = join(result, self._send_to_workers(message))
        if type(result) is int:
            return COUNTS[result] if result < 256 else routed.delivered(result)
        return result       # a Routed already (routed.outcome, without the call)

    def route_skipping(self, skipped: set, message: Message, from_peer: bool = True,
                       share_target=None) -> Routed:
        """`route` of a peer's message that skips the sessions in `skipped`: the
        peer routed them elsewhere still, and they get it from there (see
        peer_views)."""
        if share_target is not None:
            return self.route(message, from_peer, share_target)
        matches = [(topic_filter, {c: o for c, o in subscribers.items() if c not in skipped})
                   for topic_filter, subscribers in self._local.match(message.topic_name)]
        return routed.outcome(self._deliver_overlapping(message, matches, {}, True))

    def _send_to_workers(self, message: Message):
        """One frame per other worker with a matching plain route; a count, or a
        Routed with the ack ids they will answer and the congested routes."""
        workers = self.remote_workers_for(message.topic_name)
        result = 0
        for worker_id in workers:
            ack_id = self._send_to_worker(worker_id, message, None)
            result = join(result, 1 if ack_id is None else routed.forwarded(ack_id))
        if self.remote_valves is not None and workers:
            for _filter, valves in self.remote_valves.match(message.topic_name):
                result = join(result, routed.congestion(tuple(valves.values())))
        return result

    def _deliver_local(self, message: Message, from_peer: bool):
        matches = self._local.match(message.topic_name)
        if not matches:
            return 0
        if len(matches) > 1:
            return self._deliver_overlapping(message, matches, {}, from_peer)
        sessions = self._sessions
        origin = message.origin
        msg_qos = message.qos
        msg_retain = message.retain
        encoded: dict = {}
        count = 0
        notes = None
        for client_id, opts in matches[0][1].items():
            if opts.no_local and client_id == origin:
                continue
            session = sessions.get(client_id)
            if session is None:
                session = self._forwarder(client_id, from_peer)
                if session is None:
                    continue
            note = session.deliver(message, opts.qos if opts.qos < msg_qos else msg_qos,
                                   msg_retain and opts.retain_as_published, opts.subscription_ids,
                                   encoded)
            if note is not None:
                notes = note if notes is None else join(notes, note)
            count += 1
        if notes is None:
            return count
        if notes is WROTE_DURABLE and count < len(DURABLE_COUNTS):  # queued to disc: Routed.counted, inline
            return DURABLE_COUNTS[count]
        return notes.counted(count)

    def route_to_clients(self, message: Message, client_ids: set[str]):
        """Deliver a message to the local subscribers among `client_ids` only."""
        if not client_ids:
            return 0
        matches = [(topic_filter, {c: o for c, o in subscribers.items() if c in client_ids})
                   for topic_filter, subscribers in self._local.match(message.topic_name)]
        return self._deliver_overlapping(message, matches, {}, True)

    def _forwarder(self, client_id: str, from_peer: bool):
        """The forwarder of a session that moved to another worker: it takes
        messages from peers, and local ones until the new owner's routes are
        known here (then they go there directly)."""
        forwarder = self._forwarders.get(client_id)
        if forwarder is not None and (from_peer or not forwarder.moved):
            return forwarder
        return None

    def _deliver_overlapping(self, message: Message, matches: list, encoded: dict,
                             from_peer: bool):
        """One delivery per client with the highest granted QoS and every
        matching subscription identifier ([MQTT-3.3.5-1], 5.0 §3.3.4)."""
        best: dict[str, list] = {}
        origin = message.origin
        for _filter, subscribers in matches:
            for client_id, opts in subscribers.items():
                if opts.no_local and client_id == origin:
                    continue
                entry = best.get(client_id)
                if entry is None:
                    entry = best[client_id] = [opts.qos, opts.retain_as_published, []]
                else:
                    entry[0] = max(entry[0], opts.qos)
                    entry[1] = entry[1] or opts.retain_as_published
                if opts.subscription_identifier:
                    entry[2].append(opts.subscription_identifier)
        result = 0
        for client_id, (qos, rap, sub_ids) in best.items():
            session = self._sessions.get(client_id) or self._forwarder(client_id, from_peer)
            if session is not None:
                note = session.deliver(message, min(qos, message.qos), message.retain and rap,
                                       tuple(sub_ids), encoded)
                result = join(result, 1 if note is None else note.counted(1))
        return result

    def _deliver_shared(self, message: Message):
        """Exactly one member of each matching shared group, wherever it is:
        a local member directly, a remote one by a frame to its worker."""
        groups: dict[tuple[str, str], list] = {}
        for topic_filter, local_groups in self._shared.match(message.topic_name):
            for name, group in local_groups.items():
                groups.setdefault((name, topic_filter), []).append(group)
        for topic_filter, counts in self._remote_shared.match(message.topic_name):
            for name, worker_id in counts:
                groups.setdefault((name, topic_filter), []).append(worker_id)
        result = 0
        for (name, topic_filter), places in groups.items():
            place = places[next(self._share_cursor) % len(places)] if len(places) > 1 else places[0]
            if isinstance(place, SharedGroup):
                result = join(result, self._deliver_to_group(message, name, topic_filter))
            elif self._send_to_worker is not None:
                ack_id = self._send_to_worker(place, message, (name, topic_filter))
                result = join(result, 1 if ack_id is None else routed.forwarded(ack_id))
        return result

    def _deliver_to_group(self, message: Message, name: str, topic_filter: str):
        group = self._shared.get(topic_filter).get(name)
        picked = group.pick(self._is_online) if group is not None else None
        if picked is None:
            return 0
        client_id, opts = picked
        session = self._sessions.get(client_id) or self._forwarders.get(client_id)
        if session is None:
            return 0
        note = session.deliver(message, min(opts.qos, message.qos),
                               message.retain and opts.retain_as_published, opts.subscription_ids, {})
        return 1 if note is None else note.counted(1)

    def _is_online(self, client_id: str) -> bool:
        session = self._sessions.get(client_id)
        return session is not None and session.online
