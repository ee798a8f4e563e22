"""The MQTT 3.1 / 3.1.1 / 5.0 codec: bytes in, packet values out, and back.

Pure code: no sockets, no event loop, no clock, no logging. Bad input raises
`actormq.errors.ProtocolError(reason_code, detail)` and nothing else.
"""

from actormq.transport.codec.decode import MAX_PACKET_SIZE, StreamDecoder, decode_packet
from actormq.transport.codec.encode import (
    PublishTemplate, encode, encode_publish, encode_publish_template, encode_stored_publish,
)
from actormq.transport.codec.packets import (
    Auth, Connack, Connect, Disconnect, Packet, PacketType, Pingreq, Pingresp, Puback, Pubcomp,
    Publish, Pubrec, Pubrel, Suback, Subscribe, Subscription, Unsuback, Unsubscribe, Will,
)
from actormq.transport.codec.primitives import decode_varint, encode_varint
from actormq.transport.codec.properties import (
    PROPERTIES, PROPERTY_BY_ID, PROPERTY_BY_NAME, WILL, decode_properties, encode_properties,
)
from actormq.transport.codec.reason_codes import (
    ReasonCode, connack_return_code_v311, suback_code_v311,
)

__all__ = [
    "MAX_PACKET_SIZE", "StreamDecoder", "decode_packet",
    "PublishTemplate", "encode", "encode_publish", "encode_publish_template", "encode_stored_publish",
    "Auth", "Connack", "Connect", "Disconnect", "Packet", "PacketType", "Pingreq", "Pingresp",
    "Puback", "Pubcomp", "Publish", "Pubrec", "Pubrel", "Suback", "Subscribe", "Subscription",
    "Unsuback", "Unsubscribe", "Will",
    "decode_varint", "encode_varint",
    "PROPERTIES", "PROPERTY_BY_ID", "PROPERTY_BY_NAME", "WILL", "decode_properties",
    "encode_properties",
    "ReasonCode", "connack_return_code_v311", "suback_code_v311",
]
