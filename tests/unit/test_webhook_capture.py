"""What a worker captures of an event instead of the event: the on_publish field tuple (made
into the same event in the sender), the auth_on_register cache key, and the sender's priority."""

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.actors.messages import Message
from actormq.hooks import ClientInfo
from actormq.webhooks import events
from actormq.webhooks.auth_cache import AuthCache
from actormq.webhooks.sender import _body_maker
from actormq.webhooks.vmq_answers import Answer
from actormq.webhooks.vmq_bodies import build_body

texts = st.text(max_size=12)
clients = st.builds(ClientInfo, client_id=texts, username=st.none() | texts, password=st.none() | st.binary(max_size=8),
                    peer_host=texts, peer_port=st.integers(0, 65535), protocol_level=st.sampled_from([4, 5]),
                    clean_start=st.booleans(), mountpoint=texts,
                    properties=st.dictionaries(st.sampled_from(["session_expiry_interval", "receive_maximum"]),
                                               st.integers(0, 100)))
messages = st.builds(Message, topic_name=texts, payload=st.binary(max_size=16), qos=st.integers(0, 2),
                     retain=st.booleans())


@settings(max_examples=50, deadline=None)
@given(clients, messages)
def test_captured_fields_make_the_same_event_and_body(client, message):
    event = events.vmq_message(events.vmq_client(client), message)
    assert events.message_event(events.message_fields(client, message)) == event
    assert build_body("on_publish", events.message_event(events.message_fields(client, message))) == \
        build_body("on_publish", event)


def test_the_sender_makes_the_body_of_a_captured_record():
    from actormq.webhooks.sender import SenderProcess
    client = ClientInfo("c1", "joe", b"pw", "10.0.0.1", 1234)
    message = Message("a/b", b"hi", 1, False)
    made = []
    sender = SenderProcess.__new__(SenderProcess)
    sender._targets = {}
    sender.offer = lambda target, name, key, payload: made.append(payload()) or True
    sender.send_fields("http://e/", {}, "on_publish", True, events.message_event,
                       events.message_fields(client, message), "c1")
    body = _body_maker(made[0])()
    assert body == b'{"username":"joe","mountpoint":"","client_id":"c1","qos":1,"topic":"a/b",' \
                   b'"payload":"aGk=","retain":false}'


def test_register_key_ignores_the_peer_port_and_tells_the_rest_apart():
    cache = AuthCache(10)
    first = ClientInfo("c1", "joe", b"pw", "10.0.0.1", 1234)
    cache.insert("e", "auth_on_register", None, 60, Answer("ok"), events.register_key(first))
    again = ClientInfo("c1", "joe", b"pw", "10.0.0.1", 4321)
    assert cache.lookup("e", "auth_on_register", None, events.register_key(again)) is not None
    for other in (ClientInfo("c1", "joe", b"other", "10.0.0.1", 1234),
                  ClientInfo("c1", "ann", b"pw", "10.0.0.1", 1234),
                  ClientInfo("c2", "joe", b"pw", "10.0.0.1", 1234),
                  ClientInfo("c1", "joe", b"pw", "10.0.0.2", 1234),
                  ClientInfo("c1", "joe", b"pw", "10.0.0.1", 1234, protocol_level=5,
                             properties={"authentication_data": b"\x01"})):
        assert cache.lookup("e", "auth_on_register", None, events.register_key(other)) is None


def test_the_sender_leaves_the_broker_priority():
    code = ("import os; from actormq.webhooks.sender import lower_priority; lower_priority(17); "
            "print(os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["17", str(0)]      # nice 17, SCHED_OTHER
