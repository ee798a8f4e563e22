"""The ACL file (`acl.file`): its grammar chosen by `acl.format` or detected,
its rules checked first match wins, reloaded on `actormq acl reload` / SIGHUP.

A file that does not parse at start stops the start (`AclFileError`, exit 2);
one that does not parse on a reload keeps the rules read before, with one
error line naming the file and line.
"""

from __future__ import annotations

import logging

from actormq.auth.acl_emqx import AclSyntaxError, parse_emqx_acl
from actormq.auth.acl_mosquitto import parse_mosquitto_acl
from actormq.auth.acl_rules import Action, ClientInfo, Permission, Rule, check_rules

log = logging.getLogger("actormq.auth")

FORMATS = ("auto", "emqx", "mosquitto")


class AclFileError(ValueError):
    """An ACL file that cannot be read or parsed; the message names the file and the line."""


def parse_acl_text(text: str, fmt: str = "auto") -> tuple[str, list[Rule]]:
    """(format, rules) of an ACL file's text; AclSyntaxError when it does not parse."""
    if fmt == "emqx":
        return fmt, parse_emqx_acl(text)
    if fmt == "mosquitto":
        return fmt, parse_mosquitto_acl(text)
    try:
        return "emqx", parse_emqx_acl(text)
    except AclSyntaxError as as_emqx:
        try:
            return "mosquitto", parse_mosquitto_acl(text)
        except AclSyntaxError as as_mosquitto:
            raise AclSyntaxError(
                as_emqx.line_number,
                f"neither EMQX acl.conf ({as_emqx}) nor Mosquitto ACL ({as_mosquitto})") from None


def read_acl_file(path: str, fmt: str = "auto") -> tuple[str, list[Rule]]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as problem:
        raise AclFileError(f"acl.file {path}: cannot read it ({getattr(problem, 'strerror', None) or problem})")
    try:
        return parse_acl_text(text, fmt)
    except AclSyntaxError as bad:
        if bad.reason.startswith("neither"):
            raise AclFileError(f"acl.file {path}: {bad.reason}") from None
        raise AclFileError(f"acl.file {path}:{bad.line_number}: {bad.reason}") from None


class AclFile:
    """The rules of one ACL file; `check` gives the first matching rule's permission or None."""

    def __init__(self, path: str, fmt: str = "auto") -> None:
        self.path, self.format_setting = path, fmt
        self.format, rules = read_acl_file(path, fmt)
        self.rules: tuple[Rule, ...] = tuple(rules)
        log.info("acl.file %s: %d rules (%s format)", path, len(self.rules), self.format)

    def check(self, client: ClientInfo, action: Action, topic: str) -> Permission | None:
        return check_rules(self.rules, client, action, topic)

    def reload(self) -> bool:
        """Read the file again; on an error keep the rules read before and say so."""
        try:
            self.format, rules = read_acl_file(self.path, self.format_setting)
        except AclFileError as problem:
            log.error("%s; keeping the %d rules read before", problem, len(self.rules))
            return False
        self.rules = tuple(rules)
        log.info("acl.file %s reloaded: %d rules (%s format)", self.path, len(self.rules), self.format)
        return True
