"""The subscriptions of a Session: SUBSCRIBE and UNSUBSCRIBE (with the
plugins' decisions), the operator's subscribe/unsubscribe on a client's
behalf, and subscriptions restored from the store or a hand-over. Each one is
kept in `session.subscriptions` and in the worker's Router.
"""

from __future__ import annotations

import logging

from actormq.actors import hooked
from actormq.actors.messages import SubOptions
from actormq.errors import ProtocolError
from actormq.transport import mountpoint as mounts
from actormq.transport.codec import ReasonCode, Suback, Subscription, Unsuback
from actormq.transport.topics import parse_shared, validate_topic_filter

log = logging.getLogger("actormq.session")


class Subscriptions:
    """What a Session does with subscriptions (a part of Session)."""

    __slots__ = ()

    def handle_subscribe(self, packet) -> None:
        settings = self.broker.settings
        sub_id = packet.properties.get("subscription_identifier")
        if sub_id is not None and not settings.subscription_identifier_available:
            raise ProtocolError(ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                                "subscription identifiers are not supported")
        if self.conn.mountpoint:
            packet = mounts.mount_subscribe(packet, self.conn.mountpoint)
        if self.hooks.client_authorize_subscribe is not None:
            hooked.subscribe(self, packet, [_valid_filter(sub.topic_filter)
                                            for sub in packet.subscriptions])
            return
        self.subscribe_decided(packet, None)

    def subscribe_decided(self, packet, decisions: list | None) -> None:
        """SUBSCRIBE once the plugins (if any) decided on each filter: subscribe, SUBACK."""
        sub_id = packet.properties.get("subscription_identifier")
        codes = []
        refused = []
        retained_wanted = []
        for index, sub in enumerate(packet.subscriptions):
            code, new, topic_filter = self._subscribe_one(sub, sub_id,
                                                          decisions[index] if decisions else None)
            codes.append(code)
            if code >= 0x80:
                refused.append(f"{sub.topic_filter!r}: {_REFUSALS.get(code, 'refused')}")
            elif sub.retain_handling == 0 or (sub.retain_handling == 1 and new):
                retained_wanted.append(topic_filter)
        log.debug("client %s subscribed: %s", self.client_id,
                  ", ".join(f"{sub.topic_filter} q{code}" for sub, code in zip(packet.subscriptions, codes)))
        props = {"reason_string": "; ".join(refused)} if refused and self.version == 5 else {}
        self._ack(Suback(packet.packet_id, tuple(codes), props))
        self.store_record()
        for topic_filter in retained_wanted:
            self.broker.send_retained(self, topic_filter, self.subscriptions[topic_filter])

    def _subscribe_one(self, sub, sub_id, decision) -> tuple[int, bool, str]:
        """(SUBACK code, whether the subscription is new, the filter subscribed)."""
        settings = self.broker.settings
        topic_filter = sub.topic_filter
        requested = sub.qos
        if decision is not None:
            if not decision.allowed:
                return self._refuse(decision.reason_code), False, topic_filter
            try:
                requested, topic_filter = hooked.granted(decision, requested, topic_filter)
            except hooked.BadModifier as exc:
                log.error("plugin %s: bad modifier on a SUBSCRIBE of %s: %s", decision.decided_by,
                          self.client_id, exc)
                return self._refuse(ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR), False, topic_filter
        try:
            validate_topic_filter(topic_filter)
        except ProtocolError as exc:
            return self._refuse(exc.reason_code), False, topic_filter
        group, real_filter = parse_shared(topic_filter)
        if group is not None:
            if not settings.shared_subscription_available:
                return self._refuse(ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED), False, topic_filter
            if sub.no_local and self.version == 5:
                raise ProtocolError(ReasonCode.PROTOCOL_ERROR, "no local on a shared subscription")
        if not settings.wildcard_subscription_available and ("+" in real_filter or "#" in real_filter):
            return self._refuse(ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED), False, topic_filter
        if not self.broker.authorize_subscribe(self, topic_filter):
            return self._refuse(ReasonCode.NOT_AUTHORIZED), False, topic_filter
        qos = min(requested, settings.max_qos)
        opts = SubOptions(qos, sub.no_local, sub.retain_as_published, sub.retain_handling,
                          sub_id, group)
        new = self.broker.router.subscribe(self.client_id, real_filter, opts)
        self.subscriptions_table()[topic_filter] = opts
        chain = self.hooks.session_subscribed
        if chain is not None:
            chain.notify(hooked.info_of(self.conn), topic_filter, opts)
        return qos, new, topic_filter

    def _refuse(self, reason_code: int) -> int:
        return reason_code if self.version == 5 else 0x80

    def handle_unsubscribe(self, packet) -> None:
        if self.conn.mountpoint:
            packet = mounts.mount_unsubscribe(packet, self.conn.mountpoint)
        if self.hooks.client_unsubscribe is not None:
            hooked.unsubscribe(self, packet)
            return
        self.unsubscribe_decided(packet, None)

    def unsubscribe_decided(self, packet, decisions: list | None) -> None:
        """UNSUBSCRIBE once the plugins (if any) decided on each filter: unsubscribe, UNSUBACK."""
        codes = []
        chain = self.hooks.session_unsubscribed
        for index, topic_filter in enumerate(packet.topic_filters):
            decision = decisions[index] if decisions else None
            if decision is not None:
                if not decision.allowed:
                    codes.append(decision.reason_code)
                    continue
                topic_filter = decision.modifiers.get("topic_filter", topic_filter)
            opts = self.subscriptions.pop(topic_filter, None)
            if opts is None:
                codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
                continue
            _group, real_filter = parse_shared(topic_filter)
            self.broker.router.unsubscribe(self.client_id, real_filter, opts.share_group)
            codes.append(ReasonCode.SUCCESS)
            if chain is not None:
                chain.notify(hooked.info_of(self.conn), topic_filter)
        log.debug("client %s unsubscribed: %s", self.client_id, ", ".join(packet.topic_filters))
        self._ack(Unsuback(packet.packet_id, tuple(codes)))
        self.store_record()

    def add_subscription(self, topic_filter: str, qos: int) -> int:
        """Subscribe on an operator's behalf (management API): the granted QoS or a
        refusal code; retained messages are sent as for a SUBSCRIBE."""
        code, _new, topic_filter = self._subscribe_one(Subscription(topic_filter, qos), None, None)
        if code < 0x80:
            self.store_record()
            self.broker.send_retained(self, topic_filter, self.subscriptions[topic_filter])
        return code

    def remove_subscription(self, topic_filter: str) -> bool:
        """Unsubscribe on an operator's behalf; False when there was no such subscription."""
        opts = self.subscriptions.pop(topic_filter, None)
        if opts is None:
            return False
        _group, real_filter = parse_shared(topic_filter)
        self.broker.router.unsubscribe(self.client_id, real_filter, opts.share_group)
        self.store_record()
        chain = self.hooks.session_unsubscribed
        if chain is not None and self.conn is not None:
            chain.notify(hooked.info_of(self.conn), topic_filter)
        return True

    def restore_subscriptions(self, subscriptions: dict[str, SubOptions],
                              announce: bool = True) -> None:
        for topic_filter, opts in subscriptions.items():
            _group, real_filter = parse_shared(topic_filter)
            self.broker.router.subscribe(self.client_id, real_filter, opts, announce)
            self.subscriptions_table()[topic_filter] = opts


_REFUSALS = {
    ReasonCode.TOPIC_FILTER_INVALID: "invalid topic filter",
    ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: "shared subscriptions are not supported",
    ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: "wildcard subscriptions are not supported",
    ReasonCode.NOT_AUTHORIZED: "not authorized",
}


def _valid_filter(topic_filter: str) -> bool:
    try:
        validate_topic_filter(topic_filter)
    except ProtocolError:
        return False
    return True
