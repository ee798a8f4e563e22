"""EMQX 4 acl.conf: Erlang-term rules, parsed into `acl_rules.Rule`s.

    %% comment
    {allow, {user, "dashboard"}, subscribe, ["$SYS/#"]}.
    {allow, {ipaddr, "127.0.0.1"}, pubsub, ["$SYS/#", "#"]}.
    {deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.
    {allow, {'and', [{user, "u"}, {ipaddrs, ["10.0.0.0/8"]}]}, publish, ["t/%u/#"]}.
    {allow, all}.

Owns the term reader (atoms, quoted atoms, strings, tuples, lists, `%`
comments) and the meaning of each term; `AclSyntaxError` names the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from actormq.auth.acl_rules import (Action, AllOf, AnyOf, Client, Eq, Everyone, IpAddr, Permission, Rule,
                                    User, Who)


class AclSyntaxError(ValueError):
    """A line of an ACL file that does not parse; carries the 1-based line number."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Atom:
    name: str


_TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<comment>%[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<qatom>'(?:[^'\\]|\\.)*')
  | (?P<binopen><<) | (?P<binclose>>>)
  | (?P<atom>[a-z][A-Za-z0-9_@]*)
  | (?P<punct>[{}\[\],.])
""", re.VERBOSE)
_ACTIONS = {"publish": Action.PUBLISH, "subscribe": Action.SUBSCRIBE, "pubsub": Action.PUBSUB}


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def _tokens(text: str) -> list[tuple[str, object, int]]:
    tokens, position, line = [], 0, 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise AclSyntaxError(line, f"unexpected {text[position:position + 12]!r}")
        kind, value = match.lastgroup, match.group()
        if kind == "string":
            tokens.append(("term", _unescape(value), line))
        elif kind in ("qatom", "atom"):
            tokens.append(("term", Atom(_unescape(value) if kind == "qatom" else value), line))
        elif kind == "punct":
            tokens.append((value, value, line))
        elif kind in ("binopen", "binclose"):
            pass  # <<"t">> reads as "t"
        line += value.count("\n")
        position = match.end()
    return tokens


class _Reader:
    def __init__(self, tokens: list[tuple[str, object, int]]) -> None:
        self.tokens, self.index = tokens, 0

    def peek(self) -> tuple[str, object, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, line: int) -> tuple[str, object, int]:
        token = self.peek()
        if token is None:
            raise AclSyntaxError(line, "unexpected end of file (a rule ends with '.')")
        self.index += 1
        return token

    def term(self, line: int) -> object:
        kind, value, line = self.take(line)
        if kind == "term":
            return value
        if kind in ("{", "["):
            close = "}" if kind == "{" else "]"
            items = self._items(close, line)
            return tuple(items) if kind == "{" else list(items)
        raise AclSyntaxError(line, f"unexpected {value!r}")

    def _items(self, close: str, line: int) -> list[object]:
        items: list[object] = []
        if self.peek() and self.peek()[0] == close:
            self.index += 1
            return items
        while True:
            items.append(self.term(line))
            kind, value, line = self.take(line)
            if kind == close:
                return items
            if kind != ",":
                raise AclSyntaxError(line, f"expected ',' or {close!r}, got {value!r}")


def parse_emqx_acl(text: str) -> list[Rule]:
    """The rules of an acl.conf text, in file order; AclSyntaxError on the first bad rule."""
    reader, rules = _Reader(_tokens(text)), []
    while reader.peek() is not None:
        line = reader.peek()[2]
        term = reader.term(line)
        kind, value, _ = reader.take(line)
        if kind != ".":
            raise AclSyntaxError(line, f"a rule ends with '.', got {value!r}")
        rules.append(_rule(term, line))
    return rules


def _atom(term: object, choices: tuple[str, ...], what: str, line: int) -> str:
    if isinstance(term, Atom) and term.name in choices:
        return term.name
    raise AclSyntaxError(line, f"{what} must be one of {', '.join(choices)}, got {_show(term)}")


def _show(term: object) -> str:
    if isinstance(term, Atom):
        return term.name
    if isinstance(term, tuple):
        return "{" + ", ".join(_show(item) for item in term) + "}"
    if isinstance(term, list):
        return "[" + ", ".join(_show(item) for item in term) + "]"
    return f'"{term}"'


def _rule(term: object, line: int) -> Rule:
    if not isinstance(term, tuple) or len(term) not in (2, 4):
        raise AclSyntaxError(line, f"expected {{Permission, Who, Action, Topics}} or {{Permission, all}}, "
                                   f"got {_show(term)}")
    permission = Permission(_atom(term[0], ("allow", "deny"), "permission", line))
    if len(term) == 2:
        _atom(term[1], ("all",), "the second element of a two-element rule", line)
        return Rule(permission, Everyone(), Action.PUBSUB, None, line)
    action = _ACTIONS[_atom(term[2], tuple(_ACTIONS), "action", line)]
    if not isinstance(term[3], list):
        raise AclSyntaxError(line, f"topics must be a list, got {_show(term[3])}")
    topics = tuple(_topic(item, line) for item in term[3])
    return Rule(permission, _who(term[1], line), action, topics, line)


def _topic(term: object, line: int) -> str | Eq:
    if isinstance(term, str) and term:
        return term
    if isinstance(term, tuple) and len(term) == 2 and term[0] == Atom("eq") and isinstance(term[1], str):
        return Eq(term[1])
    raise AclSyntaxError(line, f"a topic is \"filter\" or {{eq, \"topic\"}}, got {_show(term)}")


def _who(term: object, line: int) -> Who:
    if term == Atom("all"):
        return Everyone()
    if isinstance(term, tuple) and len(term) == 2 and isinstance(term[0], Atom):
        kind, value = term[0].name, term[1]
        try:
            if kind == "user" and isinstance(value, str):
                return User(value)
            if kind in ("client", "clientid") and isinstance(value, str):
                return Client(value)
            if kind == "ipaddr" and isinstance(value, str):
                return IpAddr.parse(value)
            if kind == "ipaddrs" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                return IpAddr.parse(*value)
        except ValueError as bad_address:
            raise AclSyntaxError(line, str(bad_address)) from None
        if kind in ("and", "or") and isinstance(value, list) and value:
            whos = tuple(_who(item, line) for item in value)
            return AllOf(whos) if kind == "and" else AnyOf(whos)
    raise AclSyntaxError(line, "who must be all, {user, \"u\"}, {client, \"c\"}, {ipaddr, \"CIDR\"}, "
                               f"{{ipaddrs, [...]}}, {{'and', [...]}} or {{'or', [...]}}, got {_show(term)}")
