"""A sealer that cannot seal backs off: its waits double from the interval up to a cap, it
logs the first failure with its traceback and the next ones in a line each."""

from __future__ import annotations

import asyncio
import logging

import pytest

from openloop_dev.ports import free_port
from openloop_ledger.config import DEVELOPMENT_LEAF_KEY, DEVELOPMENT_LOG_SIGNING_KEY
from openloop_ledger.leaf import LeafEncoder
from openloop_ledger.merkle.note import Signer
from openloop_ledger.sealer import MAX_RETRY_SECONDS, Sealer, retry_wait
from openloop_runtime.db import create_engine


def test_the_wait_doubles_from_the_interval_up_to_the_cap() -> None:
    assert [retry_wait(0.25, n) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0]
    assert retry_wait(0.25, 100) == MAX_RETRY_SECONDS
    assert retry_wait(10.0, 3) == 10.0  # never sooner than the interval


async def test_a_sealer_without_its_database_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    nothing_listens = f"postgresql+asyncpg://openloop@127.0.0.1:{free_port()}/ledger"
    engine = create_engine(nothing_listens)
    sealer = Sealer(
        engine,
        LeafEncoder(DEVELOPMENT_LEAF_KEY.encode()),
        [Signer.from_key(DEVELOPMENT_LOG_SIGNING_KEY)],
        None,
        interval=0.02,
        timeout=5.0,
    )
    try:
        with caplog.at_level(logging.INFO, logger="openloop_ledger.sealer"):
            async with sealer.running():
                await asyncio.sleep(1.5)
    finally:
        await engine.dispose()
    failures = [r for r in caplog.records if r.getMessage().startswith("sealing failed")]
    # Waits of 0.02, 0.04, 0.08 ... s: about seven attempts in 1.5 s, where a fixed
    # interval would have made some seventy.
    assert 3 <= len(failures) <= 10, len(failures)
    assert failures[0].exc_info is not None
    assert all(r.exc_info is None for r in failures[1:])
