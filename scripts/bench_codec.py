"""Micro-benchmark of the codec's hot path: decode and encode of 64-byte QoS 0 / QoS 1 PUBLISH.

Usage: python scripts/bench_codec.py [--number N]
"""

import argparse
import pathlib
import sys
import timeit

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from actormq.transport.codec import (  # noqa: E402
    Puback, StreamDecoder, decode_packet, encode, encode_publish, encode_publish_template,
)

TOPIC = "sensors/building-1/floor-2/temperature"
PAYLOAD = b"x" * 64


def _rate(stmt, number: int) -> float:
    best = min(timeit.repeat(stmt, number=number, repeat=5))
    return number / best


def _report(label: str, stmt, number: int) -> None:
    rate = _rate(stmt, number)
    print(f"{label:<44} {rate:>12,.0f} /s  {1e6 / rate:6.2f} us")


def bench_version(version: int, number: int) -> None:
    for qos in (0, 1):
        packet_id = 1 if qos else None
        data = encode_publish(TOPIC, PAYLOAD, qos, False, False, packet_id, None, version)
        decoder = StreamDecoder()
        decoder.version = version
        body_start = 2 if data[1] < 0x80 else 3
        body = data[body_start:]
        _report(f"v{version} QoS{qos} PUBLISH ({len(data)} B) StreamDecoder.feed",
                lambda: decoder.feed(data), number)
        _report(f"v{version} QoS{qos} PUBLISH decode_packet",
                lambda: decode_packet(data[0], body, version), number)
        _report(f"v{version} QoS{qos} PUBLISH encode_publish",
                lambda: encode_publish(TOPIC, PAYLOAD, qos, False, False, packet_id, None,
                                       version), number)
        template = encode_publish_template(TOPIC, PAYLOAD, qos, False, None, version)
        _report(f"v{version} QoS{qos} PUBLISH template.to_bytes",
                lambda: template.to_bytes(packet_id), number)
    puback = encode(Puback(1), version)
    decoder = StreamDecoder()
    decoder.version = version
    _report(f"v{version} PUBACK StreamDecoder.feed", lambda: decoder.feed(puback), number)
    _report(f"v{version} PUBACK encode", lambda: encode(Puback(1), version), number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; best of 5 x {args.number:,} calls")
    for version in (4, 5):
        bench_version(version, args.number)


if __name__ == "__main__":
    main()
