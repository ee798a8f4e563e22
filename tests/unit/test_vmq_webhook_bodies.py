"""VerneMQ webhook bodies of all 22 hooks and the answers to them, as vmq_webhooks defines them."""

import pytest

from actormq.webhooks.vmq_answers import InvalidAnswer, check_modifiers, parse_answer
from actormq.webhooks.vmq_bodies import HOOKS, build_body

CONNECT = {"peer_addr": "127.0.0.1", "peer_port": 8888, "mountpoint": "", "client_id": "clientid",
           "username": "username", "password": b"password", "clean_session": False,
           "clean_start": True, "properties": {}}
MESSAGE = {"username": "username", "mountpoint": "", "client_id": "clientid", "qos": 1,
           "topic": "a/b", "payload": b"hello", "retain": False, "properties": {}}
SUBSCRIBE = {"username": "username", "mountpoint": "", "client_id": "clientid",
             "topics": [("a/b", 1), ("c/d", 2)], "properties": {}}


def test_all_22_hooks_are_known():
    assert len(HOOKS) == 22
    decisions = {name for name, spec in HOOKS.items() if spec.decides}
    assert decisions == {"auth_on_register", "auth_on_publish", "auth_on_subscribe", "on_unsubscribe",
                         "on_deliver", "auth_on_register_m5", "auth_on_publish_m5",
                         "auth_on_subscribe_m5", "on_unsubscribe_m5", "on_deliver_m5", "on_auth_m5"}


def test_auth_on_register_body_as_vernemq_documents_it():
    body = build_body("auth_on_register", CONNECT)
    assert body == {"peer_addr": "127.0.0.1", "peer_port": 8888, "mountpoint": "", "client_id": "clientid",
                    "username": "username", "password": "password", "clean_session": False}
    assert list(body) == ["peer_addr", "peer_port", "mountpoint", "client_id", "username", "password",
                          "clean_session"]


def test_auth_on_register_m5_body():
    event = dict(CONNECT, properties={"session_expiry_interval": 60})
    assert build_body("auth_on_register_m5", event) == {
        "peer_addr": "127.0.0.1", "peer_port": 8888, "mountpoint": "", "client_id": "clientid",
        "username": "username", "password": "password", "clean_start": True,
        "properties": {"p_session_expiry_interval": 60}}


def test_anonymous_username_and_password_are_null():
    body = build_body("auth_on_register", dict(CONNECT, username=None, password=None))
    assert body["username"] is None and body["password"] is None


@pytest.mark.parametrize("hook", ["auth_on_publish", "on_publish"])
def test_publish_bodies_carry_the_payload_in_base64(hook):
    assert build_body(hook, MESSAGE) == {"username": "username", "mountpoint": "", "client_id": "clientid",
                                         "qos": 1, "topic": "a/b", "payload": "aGVsbG8=", "retain": False}


def test_payload_as_text_when_base64_is_off_and_no_payload_for_auth_on_publish():
    assert build_body("on_publish", MESSAGE, base64_payload=False)["payload"] == "hello"
    assert "payload" not in build_body("auth_on_publish", MESSAGE, no_payload=True)
    assert "payload" not in build_body("auth_on_publish_m5", MESSAGE, no_payload=True)
    assert build_body("on_publish", MESSAGE, no_payload=True)["payload"] == "aGVsbG8="


def test_m5_message_properties_as_p_keys():
    event = dict(MESSAGE, properties={"user_property": [("k", "v")], "content_type": "text/plain",
                                      "payload_format_indicator": 1, "correlation_data": b"id-1",
                                      "response_topic": "r/t", "message_expiry_interval": 9})
    assert build_body("on_publish_m5", event)["properties"] == {
        "p_user_property": [{"key": "aw==", "val": "dg=="}], "p_content_type": "text/plain",
        "p_payload_format_indicator": "utf8", "p_correlation_data": "id-1",
        "p_response_topic": "r/t", "p_message_expiry_interval": 9}


@pytest.mark.parametrize("hook", ["auth_on_subscribe", "on_subscribe"])
def test_subscribe_bodies_list_topics_with_qos(hook):
    assert build_body(hook, SUBSCRIBE) == {"username": "username", "mountpoint": "", "client_id": "clientid",
                                           "topics": [{"topic": "a/b", "qos": 1}, {"topic": "c/d", "qos": 2}]}


def test_subscribe_m5_topics_with_options_and_rejected_qos_128():
    event = dict(SUBSCRIBE, topics=[("a/b", 1, {"no_local": True, "rap": False, "retain_handling": "dont_send"}),
                                    ("x", 128)])
    assert build_body("on_subscribe_m5", event)["topics"] == [
        {"topic": "a/b", "qos": 1, "no_local": True, "rap": False, "retain_handling": "dont_send"},
        {"topic": "x", "qos": 128}]


def test_unsubscribe_bodies_list_plain_topics():
    event = dict(SUBSCRIBE, topics=["a/b", "c/d"])
    assert build_body("on_unsubscribe", event) == {"username": "username", "mountpoint": "",
                                                   "client_id": "clientid", "topics": ["a/b", "c/d"]}
    assert build_body("on_unsubscribe_m5", event)["properties"] == {}


def test_deliver_offline_and_session_bodies():
    assert build_body("on_deliver", MESSAGE) == dict(
        {"username": "username", "mountpoint": "", "client_id": "clientid", "qos": 1, "topic": "a/b",
         "payload": "aGVsbG8=", "retain": False}, properties={})
    assert build_body("on_offline_message", MESSAGE) == {
        "mountpoint": "", "client_id": "clientid", "qos": 1, "topic": "a/b", "payload": "aGVsbG8=",
        "retain": False}
    for hook in ("on_client_wakeup", "on_client_offline", "on_client_gone", "on_session_expired"):
        assert build_body(hook, MESSAGE) == {"mountpoint": "", "client_id": "clientid"}
    assert build_body("on_register", CONNECT) == {"peer_addr": "127.0.0.1", "peer_port": 8888,
                                                  "mountpoint": "", "client_id": "clientid",
                                                  "username": "username"}


def test_on_auth_m5_body_has_base64_authentication_data():
    event = {"username": "u", "mountpoint": "", "client_id": "c",
             "properties": {"authentication_method": "AUTH_METHOD", "authentication_data": b"AUTH_DATA0"}}
    assert build_body("on_auth_m5", event) == {
        "username": "u", "mountpoint": "", "client_id": "c",
        "properties": {"p_authentication_method": "AUTH_METHOD", "p_authentication_data": "QVVUSF9EQVRBMA=="}}


# ---- answers ---------------------------------------------------------------------------

def test_ok_next_and_error_answers():
    assert parse_answer("auth_on_register", {"result": "ok"}).ok
    assert parse_answer("auth_on_register", {"result": "next"}).result == "next"
    answer = parse_answer("auth_on_register", {"result": {"error": "not_allowed"}})
    assert (answer.result, answer.error, answer.unavailable) == ("error", "not_allowed", False)


def test_an_answer_without_result_is_invalid():
    with pytest.raises(InvalidAnswer):
        parse_answer("auth_on_publish", {"modifiers": {}})
    with pytest.raises(InvalidAnswer):
        parse_answer("auth_on_publish", {"result": "yes"})


def test_register_modifiers_of_the_documentation():
    answer = parse_answer("auth_on_register", {"result": "ok", "modifiers": {
        "max_message_size": 65535, "max_inflight_messages": 10000, "retry_interval": 20000}})
    assert answer.modifiers == {"max_message_size": 65535, "max_inflight_messages": 10000,
                                "retry_interval": 20000}


def test_every_register_modifier_is_accepted():
    modifiers = {"allow_register": True, "allow_publish": True, "allow_subscribe": False,
                 "allow_unsubscribe": True, "max_message_size": 1, "max_connection_lifetime": 2,
                 "username": "u", "clean_session": True, "max_message_rate": 3,
                 "max_inflight_messages": 4, "shared_subscription_policy": "prefer_local",
                 "retry_interval": 5, "upgrade_qos": False, "max_online_messages": 6,
                 "max_offline_messages": 7, "queue_type": "lifo", "max_drain_time": 8,
                 "max_msgs_per_drain_step": 9, "client_id": "new", "mountpoint": "mp"}
    assert check_modifiers("auth_on_register", modifiers) == modifiers


@pytest.mark.parametrize("hook, modifiers", [
    ("auth_on_register", {"max_inflight": 10}),                 # not a modifier
    ("auth_on_register", {"max_message_size": "big"}),         # not a number
    ("auth_on_register", {"client_id": "only-the-id"}),        # needs mountpoint too
    ("auth_on_register", {"queue_type": "random"}),
    ("auth_on_publish", {"qos": 3}),
    ("auth_on_publish", {"topic": "a/+"}),                      # a wildcard is no topic name
    ("auth_on_publish", {"payload": "not base64!"}),
    ("on_deliver", {"qos": 1}),                                 # on_deliver rewrites topic/payload only
    ("auth_on_publish_m5", {"properties": {"p_session_expiry_interval": 5}}),
    ("on_auth_m5", {"topic": "a"}),
])
def test_an_invalid_modifier_makes_the_answer_an_error(hook, modifiers):
    with pytest.raises(InvalidAnswer):
        parse_answer(hook, {"result": "ok", "modifiers": modifiers})


def test_publish_modifiers_rewrite_topic_qos_payload_retain():
    answer = parse_answer("auth_on_publish", {"result": "ok", "modifiers": {
        "topic": "rewritten/topic", "qos": 2, "payload": "cmV3cml0dGVu", "retain": True}})
    assert answer.modifiers == {"topic": "rewritten/topic", "qos": 2, "payload": b"rewritten", "retain": True}
    plain = parse_answer("on_deliver", {"result": "ok", "modifiers": {"payload": "text"}}, base64_payload=False)
    assert plain.modifiers == {"payload": b"text"}


def test_m5_publish_properties_modifiers():
    answer = parse_answer("auth_on_publish_m5", {"result": "ok", "modifiers": {"properties": {
        "p_user_property": [{"key": "aw==", "val": "dg=="}], "p_content_type": "json",
        "p_payload_format_indicator": "utf8", "p_message_expiry_interval": 10}}})
    assert answer.modifiers == {"properties": {"user_property": [("k", "v")], "content_type": "json",
                                               "payload_format_indicator": 1, "message_expiry_interval": 10}}


def test_v3_subscribe_rewrite_in_top_level_topics_and_qos_128_rejects():
    answer = parse_answer("auth_on_subscribe", {"result": "ok", "topics": [
        {"topic": "rewritten/topic", "qos": 0}, {"topic": "forbidden", "qos": 128}]})
    assert answer.modifiers == {"topics": [("rewritten/topic", 0), ("forbidden", 128)]}
    assert parse_answer("auth_on_subscribe", {"result": "ok"}).modifiers == {}
    with pytest.raises(InvalidAnswer):
        parse_answer("auth_on_subscribe", {"result": "ok", "topics": [{"topic": "a/#/b", "qos": 0}]})


def test_m5_subscribe_rewrite_with_reason_code_and_options():
    answer = parse_answer("auth_on_subscribe_m5", {"result": "ok", "modifiers": {"topics": [
        {"topic": "rewritten/topic", "qos": 2, "no_local": True, "retain_handling": "send_if_new_sub"},
        {"topic": "forbidden/topic", "qos": 135}]}})
    assert answer.modifiers == {"topics": [
        ("rewritten/topic", 2, {"no_local": True, "rap": False, "retain_handling": 1}),
        ("forbidden/topic", 135)]}


def test_unsubscribe_rewrites():
    assert parse_answer("on_unsubscribe", {"result": "ok", "topics": ["rewritten/topic"]}).modifiers == {
        "topics": ["rewritten/topic"]}
    assert parse_answer("on_unsubscribe_m5", {"result": "ok", "modifiers": {"topics": ["x/#"]}}).modifiers == {
        "topics": ["x/#"]}


def test_on_auth_m5_answer():
    answer = parse_answer("on_auth_m5", {"result": "ok", "modifiers": {
        "properties": {"p_authentication_data": "QVVUSF9EQVRBMQ==", "p_authentication_method": "AUTH_METHOD"},
        "reason_code": 0}})
    assert answer.modifiers == {"properties": {"authentication_data": b"AUTH_DATA1",
                                               "authentication_method": "AUTH_METHOD"}, "reason_code": 0}


def test_notification_answers_are_ignored():
    assert parse_answer("on_publish", {}).result == "next"
    assert parse_answer("on_register", "anything").result == "next"
