"""PROXY protocol headers, golden bytes written from the HAProxy specification."""

import pytest
from hypothesis import given, strategies as st

from actormq.transport.proxy_protocol import ProxyHeaderError, header_length, parse_header

V1 = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 1883\r\n"
V1_V6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 8883\r\n"
V1_UNKNOWN = b"PROXY UNKNOWN\r\n"
SIG = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
# v2, PROXY, TCP over IPv4: 192.0.2.10:56324 -> 198.51.100.1:1883
V2 = SIG + b"\x21\x11\x00\x0c" + bytes([192, 0, 2, 10, 198, 51, 100, 1]) + b"\xdc\x04\x07\x5b"
# v2, LOCAL (a health check by the proxy itself), no address
V2_LOCAL = SIG + b"\x20\x00\x00\x00"
# v2 over IPv6 with one TLV (type 0x04 NOOP, 2 bytes) after the addresses
V2_V6 = (SIG + b"\x21\x21\x00\x29" + bytes(15) + b"\x01" + bytes(15) + b"\x02" + b"\x0f\xa0\x22\xb3"
         + b"\x04\x00\x02hi")
MQTT = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c"


@pytest.mark.parametrize("header, address", [
    (V1, ("192.0.2.10", 56324)), (V1_V6, ("2001:db8::1", 4000)), (V1_UNKNOWN, None),
    (V2, ("192.0.2.10", 56324)), (V2_LOCAL, None), (V2_V6, ("::1", 4000)),
])
def test_header_length_and_address(header, address):
    assert header_length(header + MQTT) == len(header)
    assert parse_header(header) == address


@given(st.sampled_from([V1, V1_V6, V2, V2_V6]), st.integers(min_value=0))
def test_any_prefix_is_incomplete_not_invalid(header, cut):
    assert header_length(header[:cut % len(header)] or header[:1]) is None


@pytest.mark.parametrize("data", [
    MQTT, b"GET / HTTP/1.1\r\n", b"PROXX TCP4", SIG[:5] + b"X", b"PROXY " + b"1" * 120,
])
def test_not_a_header(data):
    with pytest.raises(ProxyHeaderError):
        header_length(data)


@pytest.mark.parametrize("header", [
    b"PROXY TCP4 300.1.1.1 1.1.1.1 1 2\r\n", b"PROXY TCP4 1.1.1.1 1.1.1.1 1\r\n", b"PROXY TCP9 a b 1 2\r\n",
    SIG + b"\x31\x11\x00\x0c" + bytes(12),
])
def test_malformed_header(header):
    assert header_length(header) == len(header)
    with pytest.raises(ProxyHeaderError):
        parse_header(header)
