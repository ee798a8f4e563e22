"""Running a hook chain from a test: await its answer when it is asynchronous."""

from __future__ import annotations

import asyncio


async def decided(chain, *args):
    """The chain's Decision for `args`, awaited if the chain answered with a Future."""
    answer = chain.decide(*args)
    return await answer if isinstance(answer, asyncio.Future) else answer


async def folded(chain, *args):
    """The chain's folded value for `args`, awaited if the chain answered with a Future."""
    answer = chain.fold(*args)
    return await answer if isinstance(answer, asyncio.Future) else answer
