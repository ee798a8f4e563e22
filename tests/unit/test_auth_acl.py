"""ACL grammars (EMQX acl.conf and Mosquitto / vmq_acl), matching and format detection."""

from __future__ import annotations

import pytest

from actormq.auth.acl_emqx import AclSyntaxError, parse_emqx_acl
from actormq.auth.acl_file import AclFile, AclFileError, parse_acl_text
from actormq.auth.acl_mosquitto import parse_mosquitto_acl
from actormq.auth.acl_rules import Action, ClientInfo, Permission, check_rules

SEED_EXAMPLE = """\
%% allow "dashboard" to subscribe to "$SYS/#"
{allow, {user, "dashboard"}, subscribe, ["$SYS/#"]}.

{allow, {ipaddr, "127.0.0.1"}, pubsub, ["$SYS/#", "#"]}.

{deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.

{allow, all}.
"""
ALLOW, DENY = Permission.ALLOW, Permission.DENY
SUB, PUB = Action.SUBSCRIBE, Action.PUBLISH


def client(user=None, client_id="c1", host="10.1.2.3"):
    return ClientInfo(client_id=client_id, username=user, peer_host=host)


def test_seed_document_example():
    rules = parse_emqx_acl(SEED_EXAMPLE)
    assert [rule.line_number for rule in rules] == [2, 4, 6, 8]
    assert check_rules(rules, client("dashboard"), SUB, "$SYS/brokers") is ALLOW
    assert check_rules(rules, client("x", host="127.0.0.1"), SUB, "#") is ALLOW
    assert check_rules(rules, client("x"), SUB, "#") is DENY  # {eq, "#"}
    assert check_rules(rules, client("x"), SUB, "$SYS/a") is DENY
    assert check_rules(rules, client("x"), SUB, "a/#") is ALLOW  # eq is literal, not a filter
    assert check_rules(rules, client("x"), PUB, "$SYS/a") is ALLOW


def test_every_who_form_and_placeholders():
    rules = parse_emqx_acl("""
        {allow, {clientid, "dev1"}, publish, ["only/dev1"]}.
        {allow, {client, "dev2"}, publish, ["only/dev2"]}.
        {allow, {ipaddrs, ["192.168.0.0/16", "::1"]}, publish, ["lan/#"]}.
        {allow, {'and', [{user, "u1"}, {ipaddr, "10.0.0.0/8"}]}, publish, ["and/+"]}.
        {allow, {'or', [{user, "u2"}, {user, "u3"}]}, subscribe, ["or/#"]}.
        {allow, all, pubsub, ["users/%u/#", "clients/%c"]}.
        {deny, all}.
    """)
    assert check_rules(rules, client(client_id="dev1"), PUB, "only/dev1") is ALLOW
    assert check_rules(rules, client(client_id="dev2"), PUB, "only/dev2") is ALLOW
    assert check_rules(rules, client(client_id="dev1"), PUB, "only/dev2") is DENY
    assert check_rules(rules, client(host="192.168.7.7"), PUB, "lan/x") is ALLOW
    assert check_rules(rules, client(host="::1"), PUB, "lan/x") is ALLOW
    assert check_rules(rules, client(host="10.0.0.1"), PUB, "lan/x") is DENY
    assert check_rules(rules, client("u1", host="10.9.9.9"), PUB, "and/x") is ALLOW
    assert check_rules(rules, client("u1", host="11.9.9.9"), PUB, "and/x") is DENY
    assert check_rules(rules, client("u3"), SUB, "or/a/b") is ALLOW
    assert check_rules(rules, client("u3"), PUB, "or/a/b") is DENY
    assert check_rules(rules, client("ann"), SUB, "users/ann/x") is ALLOW
    assert check_rules(rules, client("ann"), SUB, "users/bob/x") is DENY
    assert check_rules(rules, client(None), SUB, "users/%u/x") is DENY  # no username: %u never matches
    assert check_rules(rules, client("#"), SUB, "users/a/b") is DENY  # a wildcard user widens nothing
    assert check_rules(rules, client(client_id="c9"), PUB, "clients/c9") is ALLOW
    assert check_rules(rules, client(), SUB, "$share/g/users/zz") is DENY
    assert check_rules(rules, client("zz"), SUB, "$share/g/users/zz/x") is ALLOW  # judged by the real filter


@pytest.mark.parametrize("text,line,fragment", [
    ('{allow, {user, "a"}, publish, ["t"]}\n{allow, all}.', 1, "ends with '.'"),
    ('\n\n{maybe, all}.', 3, "permission must be one of allow, deny"),
    ('{allow, {user, "a"}, read, ["t"]}.', 1, "action must be one of"),
    ('{allow, {group, "a"}, publish, ["t"]}.', 1, "who must be all"),
    ('{allow, {ipaddr, "300.1.1.1"}, publish, ["t"]}.', 1, "does not appear to be"),
    ('{allow, all, publish, "t"}.', 1, "topics must be a list"),
    ('{allow, all, publish, ["t"]', 1, "end of file"),
])
def test_emqx_syntax_errors_name_the_line(text, line, fragment):
    with pytest.raises(AclSyntaxError) as problem:
        parse_emqx_acl(text)
    assert problem.value.line_number == line and fragment in str(problem.value)


MOSQUITTO_ACL = """\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret
topic alice/deep/#
topic write shared/in

pattern read devices/%c/cmd
pattern write devices/%u/status
"""


def test_mosquitto_grammar():
    rules = parse_mosquitto_acl(MOSQUITTO_ACL)
    assert check_rules(rules, client(None), SUB, "public/x") is ALLOW
    assert check_rules(rules, client(None), PUB, "public/x") is DENY
    assert check_rules(rules, client("bob"), SUB, "public/x") is DENY
    assert check_rules(rules, client("alice"), PUB, "alice/x") is ALLOW
    assert check_rules(rules, client("alice"), SUB, "alice/secret") is ALLOW  # readwrite line comes first
    assert check_rules(rules, client("alice"), SUB, "shared/in") is DENY
    assert check_rules(rules, client("alice"), PUB, "shared/in") is ALLOW
    assert check_rules(rules, client("bob", client_id="d7"), SUB, "devices/d7/cmd") is ALLOW
    assert check_rules(rules, client("bob", client_id="d7"), PUB, "devices/bob/status") is ALLOW
    assert check_rules(rules, client("bob", client_id="d7"), PUB, "devices/d8/cmd") is DENY


def test_mosquitto_deny_line_before_grant():
    rules = parse_mosquitto_acl("user a\ntopic deny a/secret\ntopic readwrite a/#\n")
    assert check_rules(rules, client("a"), SUB, "a/secret") is DENY
    assert check_rules(rules, client("a"), SUB, "a/public") is ALLOW


@pytest.mark.parametrize("text,line", [("user\n", 1), ("topic read\n", 1), ("\nfoo bar\n", 2)])
def test_mosquitto_syntax_errors_name_the_line(text, line):
    with pytest.raises(AclSyntaxError) as problem:
        parse_mosquitto_acl(text)
    assert problem.value.line_number == line


def test_format_detection_and_errors(tmp_path):
    assert parse_acl_text(SEED_EXAMPLE)[0] == "emqx"
    assert parse_acl_text(MOSQUITTO_ACL)[0] == "mosquitto"
    with pytest.raises(AclSyntaxError, match="neither EMQX acl.conf"):
        parse_acl_text("{allow, all}.\ntopic read x\n")
    with pytest.raises(AclSyntaxError, match="line 2"):
        parse_acl_text("{allow, all}.\ntopic read x\n", "emqx")
    path = tmp_path / "acl.conf"
    path.write_text("{allow, all}.\n{deny, nobody}.\n")
    with pytest.raises(AclFileError, match="acl.conf"):
        AclFile(str(path), "emqx")
    with pytest.raises(AclFileError, match="cannot read"):
        AclFile(str(tmp_path / "missing.conf"))


def test_reload_keeps_old_rules_on_a_bad_file(tmp_path, caplog):
    path = tmp_path / "acl.conf"
    path.write_text('{deny, all, publish, ["x"]}.\n')
    acl = AclFile(str(path))
    assert acl.check(client(), PUB, "x") is DENY
    path.write_text("{broken\n")
    assert not acl.reload()
    assert acl.check(client(), PUB, "x") is DENY
    assert "keeping the 1 rules" in caplog.text
    path.write_text('{allow, all, publish, ["x"]}.\n')
    assert acl.reload() and acl.check(client(), PUB, "x") is ALLOW
