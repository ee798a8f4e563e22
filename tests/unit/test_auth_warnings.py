"""The banner's anonymous-access warning."""

from __future__ import annotations

import pytest

from actormq.auth.warnings import anonymous_warning
from actormq.conf import default_config


@pytest.mark.parametrize("host,anonymous,warned", [
    ("0.0.0.0", True, True), ("192.0.2.7", True, True), ("::", True, True),
    ("127.0.0.1", True, False), ("::1", True, False), ("localhost", True, False),
    ("0.0.0.0", False, False),
])
def test_warns_only_for_anonymous_access_off_loopback(host, anonymous, warned):
    config = default_config().with_overrides({"listener.tcp.host": host, "mqtt.allow_anonymous": anonymous})
    line = anonymous_warning(config)
    assert (line is not None) == warned
    if warned:
        assert line.startswith("WARNING: anonymous access is allowed on " + host)


def test_named_listeners_count_too():
    config = default_config().with_overrides({"listener.tcp.host": "127.0.0.1",
                                              "listener.tcp.internal": "192.0.2.9:1884"})
    assert "192.0.2.9" in anonymous_warning(config)
    assert "127.0.0.1" not in anonymous_warning(config)
