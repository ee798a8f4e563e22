"""Bytes on the wire: the MQTT codec, topic rules, listeners and the ZeroMQ bus."""
