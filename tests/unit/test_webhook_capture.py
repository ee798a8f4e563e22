"""What a worker captures of an event instead of the event: the on_publish field tuple (made
into the same event in the sender, batched per loop turn), the drops counted when the sender
gives no credit, the auth_on_register cache key, and the sender's priority."""

import os
import shutil
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actormq.actors.messages import Message
from actormq.hooks import ClientInfo
from actormq.webhooks import events
from actormq.webhooks.auth_cache import AuthCache
from actormq.webhooks.sender import _body_maker, records
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


class _Socket:
    """What the worker's side of the sender sends (a ZeroMQ socket's `send`)."""

    closed = True       # nothing to receive: no report of the sender's own counters

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes, flags: int = 0) -> None:
        self.sent.append(data)


def _worker_side(credit: int):
    """The worker's side of a sender, without its process: what it hands over is batched per
    loop turn and sent on `_Socket`."""
    from actormq.webhooks.sender import SenderProcess
    sender = SenderProcess.__new__(SenderProcess)
    sender._targets, sender._batch, sender._batch_names, sender._dropped_here = {}, [], [], {}
    sender.credit, sender._watched, sender._socket = credit, None, _Socket()
    sender._reported = Counter()
    sender._loop = SimpleNamespace(call_soon=lambda fn: None, call_later=lambda delay, fn: None)
    return sender


def test_the_sender_makes_the_body_of_a_captured_record():
    client = ClientInfo("c1", "joe", b"pw", "10.0.0.1", 1234)
    message = Message("a/b", b"hi", 1, False)
    sender = _worker_side(credit=10)
    assert sender.send_fields("http://e/", {}, "on_publish", True, events.message_event,
                              events.message_fields(client, message), "c1")
    assert sender.send("http://e/", {}, lambda: b'{"already":"made"}', "c2")
    sender._flush()
    assert len(sender._socket.sent) == 1 and sender.credit == 8      # one send for the loop turn
    (target, key, captured), (_, other_key, made) = records(sender._socket.sent[0])
    assert (target, key, other_key) == (b'["http://e/",{},null]', "c1", "c2")
    assert _body_maker(captured)() == b'{"username":"joe","mountpoint":"","client_id":"c1","qos":1,' \
                                      b'"topic":"a/b","payload":"aGk=","retain":false}'
    assert _body_maker(made)() == b'{"already":"made"}'


def test_without_credit_nothing_is_handed_over_and_the_drop_is_counted():
    client = ClientInfo("c1", "joe", b"pw", "10.0.0.1", 1234)
    sender = _worker_side(credit=1)
    fields = events.message_fields(client, Message("a/b", b"hi", 0, False))
    sent = [sender.send_fields("http://e/", {}, "on_publish", True, events.message_event, fields, "c1")
            for _ in range(3)]
    assert sent == [True, False, False]
    sender.dropped("http://e/", 5)
    assert sender._dropped_here == {"http://e/": 7} and len(sender._batch) == 1


def test_on_publish_without_credit_counts_a_drop_for_every_endpoint_of_its_hook():
    from actormq.webhooks.http import HttpPool
    from actormq.webhooks.plugin import on_message_publish
    from actormq.webhooks.specs import Webhook
    from actormq.webhooks.vmq_calls import VmqWebhooks
    sender = _worker_side(credit=0)
    calls = VmqWebhooks(HttpPool(1), sender, AuthCache(10))
    calls.set_webhooks([Webhook("on_publish", "http://a/"), Webhook("on_publish", "http://b/"),
                        Webhook("on_publish_m5", "http://c/")])
    plugin = SimpleNamespace(calls=calls)
    message = Message("a/b", b"hi", 0, False)
    for level, times in ((4, 3), (5, 2), (3, 1)):
        for _ in range(times):
            on_message_publish(plugin, ClientInfo("c1", protocol_level=level), message)
    assert sender._batch == []          # nothing made
    dropped = {row["endpoint"]: row["value"] for row in calls.stats() if row["stat"] == "dropped"}
    assert dropped == {"http://a/": 4, "http://b/": 4, "http://c/": 2}
    sender.credit = 1
    on_message_publish(plugin, ClientInfo("c1", protocol_level=5), message)
    assert [record[0] for record in sender._batch] == [b'["http://c/",{"Content-Type":"application/json",'
                                                       b'"vernemq-hook":"on_publish_m5"},5.0]']
    assert {row["endpoint"]: row["value"] for row in calls.stats() if row["stat"] == "dropped"} == dropped


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


def _priority_after(call: str, policy: str = "") -> list[str]:
    """nice and scheduling policy of a process (started at `policy`, e.g. ``chrt -f 10``)
    after it ran `call`."""
    code = (f"import os; from actormq.webhooks.sender import lower_priority; {call}; "
            "print(os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0))")
    command = [*policy.split(), sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()


def test_the_sender_leaves_the_broker_priority():
    assert _priority_after("lower_priority(17)") == ["17", str(os.SCHED_IDLE)]
    assert _priority_after("lower_priority(17, idle=False)") == ["17", str(os.SCHED_OTHER)]


@pytest.mark.skipif(shutil.which("chrt") is None or os.geteuid() != 0, reason="needs chrt and root")
def test_the_sender_leaves_a_real_time_policy_it_inherited():
    assert _priority_after("lower_priority(19)", "chrt -f 10") == ["19", str(os.SCHED_IDLE)]
    assert _priority_after("lower_priority(19, idle=False)", "chrt -f 10") == ["19", str(os.SCHED_OTHER)]


def test_the_sender_lowers_the_threads_it_has_already():
    code = ("import os, threading; from actormq.webhooks.sender import lower_priority; "
            "ready, done = threading.Event(), threading.Event(); seen = []; "
            "t = threading.Thread(target=lambda: (seen.append(threading.get_native_id()), ready.set(), done.wait())); "
            "t.start(); ready.wait(); lower_priority(17); "
            "print(os.getpriority(os.PRIO_PROCESS, seen[0]), os.sched_getscheduler(seen[0])); done.set(); t.join()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["17", str(os.SCHED_IDLE)]
