"""Packets and bytes in and out of one worker by MQTT packet type.

Four lists indexed by the packet type's number (the fixed header's high
nibble, 1 = CONNECT .. 15 = AUTH): the decoder adds one to `received` and the
packet's size to `received_bytes` where it frames a packet, the Connection
does the same for `sent` / `sent_bytes` once per packet it sends (a shared
encoded QoS 0 PUBLISH counts once per subscriber it is sent to). `flat`
names them as the worker's other counters are named, so they reach $SYS,
the bus totals and the management API the same way.
"""

from __future__ import annotations

PACKET_TYPES = ("reserved", "connect", "connack", "publish", "puback", "pubrec", "pubrel",
                "pubcomp", "subscribe", "suback", "unsubscribe", "unsuback", "pingreq",
                "pingresp", "disconnect", "auth")
DIRECTIONS = ("received", "sent")


class PacketCounts:
    """The four by-type counters of one worker (see the module docstring)."""

    __slots__ = ("received", "received_bytes", "sent", "sent_bytes")

    def __init__(self) -> None:
        self.received = [0] * 16
        self.received_bytes = [0] * 16
        self.sent = [0] * 16
        self.sent_bytes = [0] * 16

    def flat(self) -> dict:
        """`packets_<direction>_<type>` and `bytes_<direction>_<type>` for every type."""
        values = {}
        for direction in DIRECTIONS:
            packets, sizes = getattr(self, direction), getattr(self, direction + "_bytes")
            for number in range(1, 16):
                values[f"packets_{direction}_{PACKET_TYPES[number]}"] = packets[number]
                values[f"bytes_{direction}_{PACKET_TYPES[number]}"] = sizes[number]
        return values

    def reset(self) -> None:
        for name in self.__slots__:
            getattr(self, name)[:] = [0] * 16
