"""How a Message travels in a bus frame: its header as an orjson-ready list
(the payload goes as a raw frame beside it) and back."""

from __future__ import annotations

from actormq.actors.messages import Message


def message_header(message: Message) -> list:
    """The message without its payload, for an orjson header. Binary property
    values (correlation data) go as latin-1 text, which maps byte for byte."""
    props = message.properties
    binary = ()
    if props:
        binary = [name for name, value in props.items() if type(value) is bytes]
        if binary:
            props = {name: value.decode("latin-1") if name in binary else value
                     for name, value in props.items()}
    return [message.topic_name, message.qos, message.retain, props,
            message.expires_at, message.timestamp, message.origin, binary]


def message_from_header(header: list, payload: bytes) -> Message:
    topic, qos, retain, props, expires_at, timestamp, origin, binary = header
    if props:
        props_from_json(props, binary)
    return Message(topic, bytes(payload), qos, retain, props, expires_at, timestamp, origin)


def props_from_json(props: dict, binary: list) -> None:
    """Undo what JSON did to the properties of message_header (in place)."""
    for name in binary:
        props[name] = props[name].encode("latin-1")
    if "user_property" in props:
        props["user_property"] = [tuple(pair) for pair in props["user_property"]]
