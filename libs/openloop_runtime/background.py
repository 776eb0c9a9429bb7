"""Background loops a service runs beside its gRPC server, stopped with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def background(loop: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``loop`` as a task for the block; cancel it and wait for it to stop on exit."""
    task = asyncio.create_task(loop, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
