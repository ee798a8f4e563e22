"""The auth_on_register cache key made from a client's fields (`events.register_key`, a
tuple: no request body on a hit) against the key the issue defines — endpoint + hook +
the request body without `payload` and `peer_port` (`auth_cache.cache_key` of the body
VerneMQ's webhook would POST): two CONNECTs share a tuple key exactly when they share
that key. And the ClientInfo a hooked CONNECT makes (`connect_client_info`) is the one
``ClientInfo(...)`` makes."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from hypothesis import given, settings, strategies as st

from actormq.hooks.info import ClientInfo, connect_client_info
from actormq.webhooks import events
from actormq.webhooks.auth_cache import cache_key
from actormq.webhooks.vmq_bodies import build_body

ENDPOINT = "http://127.0.0.1:8080/auth"

# small pools, so that drawn pairs often agree on a field and differ on another
texts = st.sampled_from(["joe", "ann", "", "ünï", "a b"])
properties_v5 = st.sampled_from([
    {}, {"session_expiry_interval": 60}, {"session_expiry_interval": 61},
    {"user_property": [("k", "v")]}, {"user_property": [("k", "w")]},
    {"user_property": [("k", "v"), ("k", "v")]}, {"receive_maximum": 10, "session_expiry_interval": 60},
    {"authentication_method": "SCRAM-SHA-1", "authentication_data": b"\x01\x02"},
    {"request_problem_information": 0}, {"maximum_packet_size": 1024}])


@st.composite
def clients(draw, version: int) -> ClientInfo:
    return ClientInfo(
        client_id=draw(st.sampled_from(["c1", "c2", "ü"])),
        username=draw(st.none() | texts),
        password=draw(st.none() | texts.map(str.encode)),
        peer_host=draw(st.sampled_from(["127.0.0.1", "10.0.0.2", "::1"])),
        peer_port=draw(st.integers(1, 3)),
        protocol_level=version,
        clean_start=draw(st.booleans()),
        keepalive=draw(st.integers(0, 2)),
        mountpoint=draw(st.sampled_from(["", "tenant/"])),
        properties=draw(properties_v5) if version == 5 else {})


def body_key(client: ClientInfo) -> tuple:
    hook = "auth_on_register_m5" if client.protocol_level == 5 else "auth_on_register"
    return cache_key(ENDPOINT, hook, build_body(hook, events.vmq_client(client)))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([4, 5]).flatmap(lambda version: st.tuples(clients(version), clients(version))))
def test_the_tuple_key_and_the_body_key_tell_the_same_clients_apart(pair):
    first, second = pair
    same_tuple = events.register_key(first) == events.register_key(second)
    assert same_tuple == (body_key(first) == body_key(second))


@given(clients(4), st.integers(1, 65535))
def test_the_peer_port_is_in_neither_key(client, port):
    moved = dataclasses.replace(client, peer_port=port)
    assert events.register_key(moved) == events.register_key(client)
    assert body_key(moved) == body_key(client)


@given(st.sampled_from([4, 5]).flatmap(clients), st.none() | st.text(max_size=3),
       st.none() | st.text(max_size=3))
def test_connect_client_info_is_the_clientinfo_of_the_same_fields(client, cert_cn, cert_dn):
    fields = dataclasses.replace(client, cert_cn=cert_cn, cert_dn=cert_dn, listener="tls")
    made = connect_client_info(*(getattr(fields, field.name) for field in dataclasses.fields(ClientInfo)
                                 if field.name != "superuser"))
    assert type(made) is ClientInfo
    assert made == fields
    assert pickle.loads(pickle.dumps(made)) == made
    assert made.evolve(superuser=True).superuser and not made.superuser
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.client_id = "other"
