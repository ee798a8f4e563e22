"""The broker core of one worker in-process, without sockets: a Broker on a
private event loop, and clients whose Connection writes into a `Wire` (an
in-memory transport) instead of a socket. A test feeds packets (or bytes)
to the Connection and reads back what it wrote, decoded or raw.
"""

from __future__ import annotations

import asyncio

from actormq.actors.broker import Broker
from actormq.actors.connection import Connection
from actormq.conf.load import load_config
from actormq.transport.codec import Connect, StreamDecoder, encode


class Wire:
    """An asyncio transport that keeps what is written and how it was closed."""

    def __init__(self, peer: tuple = ("127.0.0.1", 50000)) -> None:
        self.written = bytearray()
        self.closed = False
        self.eof_written = False
        self.reading = True
        self.peer = peer

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default=None):
        return self.peer if name == "peername" else default


class Client:
    """One client's Connection on a Wire; `send` feeds packets, `received` decodes
    what the broker wrote since the last call."""

    def __init__(self, core: "Core", version: int = 5, port: int = 50000) -> None:
        self.core = core
        self.version = version
        self.wire = Wire(("127.0.0.1", port))
        self.conn = Connection(core.broker)
        self.conn.connection_made(self.wire)
        self.decoder = StreamDecoder()
        self.decoder.version = version
        self._read = 0

    def send(self, *packets) -> None:
        self.send_bytes(b"".join(encode(packet, self.version) for packet in packets))

    def send_bytes(self, data: bytes) -> None:
        self.conn.data_received(data)
        self.core.settle()

    def connect(self, client_id: str, **fields) -> object:
        self.send(Connect(client_id, protocol_level=self.version, **fields))
        return self.received()[0]

    def raw(self) -> bytes:
        """The bytes written since the last raw() or received()."""
        data = bytes(self.wire.written[self._read:])
        self._read = len(self.wire.written)
        return data

    def received(self) -> list:
        return list(self.decoder.feed(self.raw()))

    def drop(self) -> None:
        """The socket is gone without DISCONNECT."""
        self.wire.closed = True
        self.conn.connection_lost(None)
        self.core.settle()


class Core:
    """A Broker (no store, no peers) on its own loop; `settle` runs what is due."""

    def __init__(self, **settings: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.broker = Broker(load_config(env={}, overrides={"sys_interval": "0", **settings}),
                             self.loop)

    def client(self, version: int = 5) -> Client:
        return Client(self, version)

    def settle(self, seconds: float = 0.0) -> None:
        """Run the loop's due callbacks (the batched socket flush), or for seconds."""
        self.loop.run_until_complete(asyncio.sleep(seconds))
        self.loop.run_until_complete(asyncio.sleep(0))

    def close(self) -> None:
        self.loop.close()
