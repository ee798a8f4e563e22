"""VerneMQ vmq_diversity Redis records, per-topic ACL limits, and a SCRAM-SHA-256
exchange between scramp's client and our server side."""

from __future__ import annotations

import json

import bcrypt
import pytest
from scramp import ScramClient

from actormq.actors.messages import Message, SubOptions
from actormq.auth.acl_rules import Action, ClientInfo
from actormq.auth.passwd_file import parse_password_lines, user_line
from actormq.auth.redis_format import RecordError, parse_record, redis_key
from actormq.auth.scram import METHOD, ScramCredentials, ScramExchange, ScramFailed
from actormq.auth.verdicts import publish_answer, subscribe_answer
from actormq.hooks.results import Error, Ok

PASSHASH = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()


def test_key_is_vernemqs_compact_json_array():
    assert redis_key("", "1528361231", "101") == '["","1528361231","101"]'
    assert redis_key("mp", "c", None) == '["mp","c",""]'


def test_record_acl_and_modifiers():
    record = parse_record(json.dumps({
        "passhash": PASSHASH,
        "publish_acl": [{"pattern": "a/%u/#", "max_qos": 1, "allowed_retain": False, "max_payload_size": 4},
                        {"pattern": "rewrite/%c", "modifiers": {"topic": "other", "qos": 0}}],
        "subscribe_acl": [{"pattern": "say/#", "max_qos": 0}, {"pattern": "%m/x"}],
    }))
    client = ClientInfo(client_id="c1", username="u1", mountpoint="m1")
    assert record.passhash.verify(b"pw") and not record.superuser
    ok = record.verdict(client, Action.PUBLISH, "a/u1/b")
    assert publish_answer(ok, Message("a/u1/b", b"1234", qos=1)) == Ok()
    assert isinstance(publish_answer(ok, Message("a/u1/b", b"1234", qos=2)), Error)
    assert isinstance(publish_answer(ok, Message("a/u1/b", b"12345")), Error)
    assert isinstance(publish_answer(ok, Message("a/u1/b", b"", retain=True)), Error)
    assert not record.verdict(client, Action.PUBLISH, "a/u2/b").allowed
    rewrite = record.verdict(client, Action.PUBLISH, "rewrite/c1")
    assert publish_answer(rewrite, Message("rewrite/c1", b"")) == Ok(topic_name="other", qos=0)
    sub = record.verdict(client, Action.SUBSCRIBE, "say/hello")
    assert subscribe_answer(sub, "say/hello", SubOptions(qos=2)) == Ok(qos=0)
    assert record.verdict(client, Action.SUBSCRIBE, "m1/x").allowed
    assert not record.verdict(client, Action.SUBSCRIBE, "a/u1/b").allowed


@pytest.mark.parametrize("value,fragment", [
    ("not json", "not JSON"), ("[]", "passhash"), ('{"passhash": "plain"}', "plain-text"),
    (json.dumps({"passhash": PASSHASH, "publish_acl": {}}), "must be a list"),
    (json.dumps({"passhash": PASSHASH, "publish_acl": [{"max_qos": 1}]}), "pattern"),
    (json.dumps({"passhash": PASSHASH, "publish_acl": [{"pattern": "x", "max_qos": "1"}]}), "max_qos"),
    (json.dumps({"passhash": PASSHASH, "publish_acl": [{"pattern": "x", "modifiers": {"bogus": 1}}]}),
     "unknown modifier"),
])
def test_bad_records_say_why(value, fragment):
    with pytest.raises(RecordError) as problem:
        parse_record(value)
    assert fragment in str(problem.value)


def _password_file_scram(user: str, password: str):
    line = user_line(user, "$7$2$AAAAAAAAAAAAAAAA$" + "A" * 86 + "==", scram=ScramCredentials.from_password(password))
    users, errors = parse_password_lines(line)
    assert errors == []
    return lambda name: users[name].scram if name in users else None


def test_scram_exchange_with_scramps_client():
    lookup = _password_file_scram("alice", "wonder")
    client = ScramClient([METHOD], "alice", "wonder")
    server = ScramExchange(lookup, "alice")
    client.set_server_first(server.first(client.get_client_first().encode()).decode())
    server_final = server.final(client.get_client_final().encode())
    client.set_server_final(server_final.decode())  # raises if the server's signature is wrong
    assert server.user == "alice"


@pytest.mark.parametrize("user,password,mqtt_user", [("alice", "wrong", "alice"), ("bob", "wonder", None),
                                                     ("alice", "wonder", "mallory")])
def test_scram_exchange_failures(user, password, mqtt_user):
    lookup = _password_file_scram("alice", "wonder")
    client = ScramClient([METHOD], user, password)
    server = ScramExchange(lookup, mqtt_user)
    with pytest.raises(ScramFailed):
        client.set_server_first(server.first(client.get_client_first().encode()).decode())
        server.final(client.get_client_final().encode())
