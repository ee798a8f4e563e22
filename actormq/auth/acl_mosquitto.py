"""Mosquitto / VerneMQ `vmq_acl` ACL files, parsed into `acl_rules.Rule`s.

    # comment
    topic read $SYS/#            (before any `user` line: anonymous clients)
    user alice
    topic readwrite alice/#      (alice's own rules)
    topic deny alice/secret
    pattern write devices/%c/#   (every client; %u %c placeholders)

`read` grants subscribing, `write` publishing, `readwrite` (also the default
when no access word is given) both, `deny` neither. As in Mosquitto, a
client's own `topic` lines are checked before the `pattern` lines, in file
order, and what no line grants is denied (a trailing deny-all rule).
"""

from __future__ import annotations

from actormq.auth.acl_emqx import AclSyntaxError
from actormq.auth.acl_rules import Action, Anonymous, Everyone, Permission, Rule, User

_ACCESS = {"read": Action.SUBSCRIBE, "write": Action.PUBLISH, "readwrite": Action.PUBSUB,
           "deny": Action.PUBSUB}


def parse_mosquitto_acl(text: str) -> list[Rule]:
    """The rules of a Mosquitto ACL text; AclSyntaxError names the first bad line."""
    topic_rules: list[Rule] = []
    pattern_rules: list[Rule] = []
    who = Anonymous()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        if keyword == "user":
            if not rest:
                raise AclSyntaxError(number, "`user` needs a user name")
            who = User(rest)
        elif keyword in ("topic", "pattern"):
            rule = _access_rule(rest, number, who if keyword == "topic" else Everyone())
            (topic_rules if keyword == "topic" else pattern_rules).append(rule)
        else:
            raise AclSyntaxError(number, f"expected `user`, `topic` or `pattern`, got {keyword!r}")
    return topic_rules + pattern_rules + [Rule(Permission.DENY, Everyone(), Action.PUBSUB, None, 0)]


def _access_rule(rest: str, number: int, who) -> Rule:
    access, _, topic = rest.partition(" ")
    if access in _ACCESS and topic.strip():
        action, topic = _ACCESS[access], topic.strip()
    elif access in _ACCESS or not rest:
        raise AclSyntaxError(number, "expected [read|write|readwrite|deny] TOPIC")
    else:
        action, topic = Action.PUBSUB, rest
    permission = Permission.DENY if access == "deny" else Permission.ALLOW
    return Rule(permission, who, action, (topic,), number)
