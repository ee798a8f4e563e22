"""Who is on the other end of a connection, as logs, hooks, auth and the API
see it: the client's address (the socket's peer, or the one a PROXY header or
X-Forwarded-For named), and the subject of its TLS client certificate.
"""

from __future__ import annotations

import sys

from actormq.transport.listeners import peer_text
from actormq.transport.tls import certificate_identity


class PeerInfo:
    """Mixin of the Connection: needs `transport` and `peer_address` (the address
    is kept once looked up: the socket may be gone when the last log line asks)."""

    __slots__ = ()

    @property
    def peer(self) -> str:
        """host:port of the client ("local" on a Unix socket)."""
        return peer_text(self._address()) if self.transport else "?"

    @property
    def peer_host(self) -> str:
        address = self._address()
        return address[0] if isinstance(address, tuple) else "local"

    @property
    def peer_port(self) -> int | None:
        address = self._address()
        return address[1] if isinstance(address, tuple) else None

    def _address(self):
        if self.peer_address is None and self.transport is not None:
            address = self.transport.get_extra_info("peername")
            if isinstance(address, tuple):  # clients of one host share its text
                address = (sys.intern(address[0]), *address[1:])
            self.peer_address = address
        return self.peer_address

    @property
    def cn(self) -> str | None:
        """The common name of the client certificate (TLS listeners), else None."""
        return certificate_identity(self._peercert())[0]

    @property
    def dn(self) -> str | None:
        """The subject of the client certificate as `CN=...,O=...`, else None."""
        return certificate_identity(self._peercert())[1]

    def _peercert(self):
        return self.transport.get_extra_info("peercert") if self.transport is not None else None
