"""ACL rules and their matching: who a rule is for, which action, which topics.

A rule is `(permission, who, action, topics)` as in EMQX 4's acl.conf; both
file grammars (EMQX acl.conf and Mosquitto / vmq_acl) compile to a list of
these, checked in order, first match wins (`check_rules`). Topics are filters
with wildcards, may carry `%u` / `%c` placeholders (a rule with `%u` does not
match a client without a username; a user name or client id with a wildcard
or `/` never widens a rule), or `Eq` for a literal comparison.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Union

from actormq.hooks.info import ClientInfo
from actormq.transport.topics import matches, parse_shared



class Action(enum.IntFlag):
    SUBSCRIBE = 1
    PUBLISH = 2
    PUBSUB = 3


class Permission(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


# -- who ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Everyone:
    def matches(self, client: ClientInfo) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Anonymous:
    """Clients without a username (Mosquitto's topic lines before the first `user`)."""

    def matches(self, client: ClientInfo) -> bool:
        return client.username is None


@dataclass(frozen=True, slots=True)
class User:
    name: str

    def matches(self, client: ClientInfo) -> bool:
        return client.username == self.name


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str

    def matches(self, client: ClientInfo) -> bool:
        return client.client_id == self.client_id


@dataclass(frozen=True, slots=True)
class IpAddr:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, *texts: str) -> "IpAddr":
        return cls(tuple(ipaddress.ip_network(text.strip(), strict=False) for text in texts))

    def matches(self, client: ClientInfo) -> bool:
        try:
            address = ipaddress.ip_address(client.peer_host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class AllOf:
    whos: tuple["Who", ...]

    def matches(self, client: ClientInfo) -> bool:
        return all(who.matches(client) for who in self.whos)


@dataclass(frozen=True, slots=True)
class AnyOf:
    whos: tuple["Who", ...]

    def matches(self, client: ClientInfo) -> bool:
        return any(who.matches(client) for who in self.whos)


Who = Union[Everyone, Anonymous, User, Client, IpAddr, AllOf, AnyOf]


# -- topics ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Eq:
    """A literal topic: `{eq, "t/#"}` matches the subscription `t/#` and nothing else."""

    topic: str


TopicRule = Union[str, Eq]
_UNSAFE_IN_PLACEHOLDER = ("+", "#", "/")


def expand_topic(pattern: str, client: ClientInfo) -> str | None:
    """The filter with `%u` / `%c` filled in; None when the rule cannot apply to this client."""
    if "%" not in pattern:
        return pattern
    if "%u" in pattern:
        if client.username is None or any(char in client.username for char in _UNSAFE_IN_PLACEHOLDER):
            return None
        pattern = pattern.replace("%u", client.username)
    if "%c" in pattern:
        if any(char in client.client_id for char in _UNSAFE_IN_PLACEHOLDER):
            return None
        pattern = pattern.replace("%c", client.client_id)
    return pattern


def topic_matches(rule_topic: TopicRule, client: ClientInfo, topic: str) -> bool:
    if isinstance(rule_topic, Eq):
        return rule_topic.topic == topic
    expanded = expand_topic(rule_topic, client)
    return expanded is not None and matches(expanded, topic)


# -- rules -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Rule:
    permission: Permission
    who: Who
    action: Action = Action.PUBSUB
    topics: tuple[TopicRule, ...] | None = None  # None: every topic (`{allow, all}`)
    line_number: int = 0
    action_bits: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_bits", int(self.action))  # enum flag arithmetic is slow

    def matches(self, client: ClientInfo, action_bits: int, topic: str) -> bool:
        """Whether the rule applies; `action_bits` is `int(Action...)`."""
        return (self.action_bits & action_bits) != 0 and self.who.matches(client) \
            and self.matches_topic(client, topic)

    def matches_topic(self, client: ClientInfo, topic: str) -> bool:
        if self.topics is None:
            return True
        return any(topic_matches(rule_topic, client, topic) for rule_topic in self.topics)


def acl_subject(action: Action, topic: str) -> str:
    """The topic an ACL judges: a shared subscription is judged by its real filter."""
    if action is Action.SUBSCRIBE:
        return parse_shared(topic)[1]
    return topic


def rules_for(rules, client: ClientInfo) -> tuple[Rule, ...]:
    """The rules whose Who matches a client (it does not change while it is connected)."""
    return tuple(rule for rule in rules if rule.who.matches(client))


def check_rules(rules: tuple[Rule, ...] | list[Rule], client: ClientInfo, action: Action,
                topic: str, who_checked: bool = False) -> Permission | None:
    """The permission of the first rule that matches; None when no rule does.
    `who_checked`: `rules` came from `rules_for(…, client)`."""
    subject = acl_subject(action, topic)
    bits = int(action)
    for rule in rules:
        if rule.action_bits & bits and (who_checked or rule.who.matches(client)) \
                and rule.matches_topic(client, subject):
            return rule.permission
    return None
