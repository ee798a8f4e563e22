"""BrokerSettings: the frozen snapshot of the config keys the actors read on
the hot path, as plain attributes (a dict lookup per packet is too slow)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    max_packet_size: int = 1024 * 1024
    max_client_id_len: int = 65535
    allow_anonymous: bool = True
    allow_empty_client_id: bool = True
    retain_available: bool = True
    wildcard_subscription_available: bool = True
    shared_subscription_available: bool = True
    subscription_identifier_available: bool = True
    max_qos: int = 2
    receive_maximum: int = 65535
    topic_alias_maximum: int = 65535
    server_keepalive: int = 0
    max_keepalive: int = 65535
    keepalive_multiplier: float = 1.5
    max_session_expiry_interval: int = 0
    persistent_client_expiration: int = 0
    connect_timeout: float = 30.0
    max_connect_packet_size: int = 64 * 1024
    log_connections: bool = True
    max_inflight: int = 100
    max_online_messages: int = 1000
    max_offline_messages: int = 1000
    queue_lifo: bool = False
    queue_drop_oldest: bool = False
    sys_interval: float = 10.0
    backpressure_high: int = 500
    backpressure_low: int = 250
    max_publisher_hold: float = 1.0

    @classmethod
    def from_config(cls, config) -> "BrokerSettings":
        values = {}
        for f in fields(cls):
            key = _CONFIG_KEYS.get(f.name, f"mqtt.{f.name}")
            if key is None:
                continue
            value = config.get(key, None)
            if value is not None:
                values[f.name] = value
        values["queue_lifo"] = config.get("queue.type", "fifo") == "lifo"
        values["queue_drop_oldest"] = config.get("queue.drop", "newest") == "oldest"
        online_limit = values.get("max_online_messages", 1000)
        high = max(16, online_limit // 2) if online_limit else 1000
        values["backpressure_high"], values["backpressure_low"] = high, high // 2
        return cls(**values)


_CONFIG_KEYS = {
    "log_connections": "log.connections",
    "max_inflight": "queue.max_inflight",
    "max_online_messages": "queue.max_online_messages",
    "max_offline_messages": "queue.max_offline_messages",
    "queue_lifo": None,
    "queue_drop_oldest": None,
    "sys_interval": "sys_interval",
    "backpressure_high": None,
    "backpressure_low": None,
    "max_publisher_hold": "queue.max_publisher_hold",
}
