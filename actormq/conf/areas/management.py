"""Config keys of the management area: the HTTP API (EMQX 4 `/api/v4` shape),
its application id and secret, Prometheus `/metrics`, and the control channel
between the node and its workers."""

from __future__ import annotations

from actormq.conf.keytypes import Key, Kind

KEYS: tuple[Key, ...] = (
    Key("management.listener.http", Kind.STR, "127.0.0.1:8081",
        "Address of the management HTTP API (host:port or port; port 0 picks a free one; 0 = off)."),
    Key("management.default_application.id", Kind.STR, "admin",
        "Application id of the management API (HTTP Basic user)."),
    Key("management.default_application.secret", Kind.STR, "",
        "Application secret (HTTP Basic password); empty: generated at first start into the data dir."),
    Key("management.max_row_limit", Kind.INT, "10000",
        "Most rows one page of a list route returns (the default of _limit).", minimum=1),
    Key("management.metrics.auth", Kind.BOOL, "off",
        "Whether GET /metrics (Prometheus) asks for the application id and secret."),
    Key("management.request_timeout_ms", Kind.INT, "5000",
        "How long the node waits for each worker's answer to an admin request.", minimum=1),
)
PATTERNS: tuple[Key, ...] = ()
