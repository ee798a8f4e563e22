"""The decoder counts every packet it frames, and its bytes, by packet type,
however the stream is chunked."""

from __future__ import annotations

from hypothesis import given, strategies as st

from actormq.actors.packet_counts import PacketCounts
from actormq.transport.codec import StreamDecoder

# independently written packets of a 3.1.1 stream after its CONNECT
PACKETS = {
    "pingreq": b"\xc0\x00",
    "puback": b"\x40\x02\x00\x07",
    "publish": b"\x30\x07\x00\x03a/bxy",
    "subscribe": b"\x82\x08\x00\x01\x00\x03a/b\x01",
    "disconnect": b"\xe0\x00",
}
CONNECT = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c"


@given(st.lists(st.sampled_from(sorted(PACKETS)), max_size=30), st.lists(st.integers(1, 64), max_size=10))
def test_counts_and_bytes_by_type_whatever_the_chunks(kinds, cuts):
    counts = PacketCounts()
    decoder = StreamDecoder(counts=counts.received, sizes=counts.received_bytes)
    stream = CONNECT + b"".join(PACKETS[kind] for kind in kinds)
    pos = 0
    for cut in cuts + [len(stream)]:
        decoder.feed(stream[pos:pos + cut])
        pos += cut
    if pos < len(stream):
        decoder.feed(stream[pos:])
    flat = counts.flat()
    assert flat["packets_received_connect"] == 1 and flat["bytes_received_connect"] == len(CONNECT)
    for kind, packet in PACKETS.items():
        assert flat[f"packets_received_{kind}"] == kinds.count(kind)
        assert flat[f"bytes_received_{kind}"] == kinds.count(kind) * len(packet)
    counts.reset()
    assert not any(counts.flat().values())
