"""Who is on the other end of a connection, as logs, hooks, auth and the API
see it: the client's address (the socket's peer, or the one a PROXY header or
X-Forwarded-For named), and the subject of its TLS client certificate.
"""

from __future__ import annotations

import socket
import sys

from actormq.transport.listeners import peer_text
from actormq.transport.tls import certificate_identity


class PeerInfo:
    """Mixin of the Connection: needs `transport`, `listener` and `peer_address`
    (the address of a TLS, WebSocket or Unix socket client is kept once looked
    up: its transport may have forgotten it when the last log line asks; an
    IPv4 peer is kept packed in one int, `pack_ipv4`; a plain TCP transport
    keeps its peer's address itself, so the connection holds none)."""

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
        address = self.peer_address
        if type(address) is int:
            return unpack_ipv4(address)
        if address is None and self.transport is not None:
            address = self.transport.get_extra_info("peername")
            if self.listener.type == "tcp":     # the event loop's TCP transport keeps it after close
                return address
            if isinstance(address, tuple):  # clients of one host share its text
                address = (sys.intern(address[0]), *address[1:])
                self.peer_address = pack_ipv4(address)
            else:
                self.peer_address = address
        return address

    @property
    def cn(self) -> str | None:
        """The common name of the client certificate (TLS listeners), else None."""
        return self.certificate_identity()[0]

    @property
    def dn(self) -> str | None:
        """The subject of the client certificate as `CN=...,O=...`, else None."""
        return self.certificate_identity()[1]

    def certificate_identity(self) -> tuple[str | None, str | None]:
        """(CN, DN) of the client certificate; (None, None) without one."""
        if self.transport is None:
            return None, None
        return certificate_identity(self.transport.get_extra_info("peercert"))


def pack_ipv4(address: tuple):
    """An IPv4 (host, port) as one int (32 bytes where the tuple and its port
    took 88); any other address as it is."""
    if len(address) != 2:
        return address
    try:
        return int.from_bytes(socket.inet_aton(address[0]), "big") << 16 | address[1]
    except OSError:
        return address


def unpack_ipv4(packed: int) -> tuple[str, int]:
    return sys.intern(socket.inet_ntoa((packed >> 16).to_bytes(4, "big"))), packed & 0xFFFF
