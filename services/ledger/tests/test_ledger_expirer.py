"""The expirer reaches every due timeout, however many rows it cannot expire lie ahead.

A ``pending_timeouts`` row whose transfer is not pending (only a defect or a hand-made
row leaves one; the verifier reports it) cannot be expired and is never removed. These
tests put such rows at the head of the table, ahead of real holds that are due.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop.ledger.v1 import resources_pb2, service_pb2
from openloop_ledger import pg
from openloop_ledger.batcher import Batcher
from openloop_ledger.expirer import BATCH, Expirer
from openloop_ledger.parse import MAX_BATCH
from openloop_ledger.writes import BatchWriter
from services.ledger.tests.ledger_helpers import (
    WALLET,
    T,
    balances,
    new_id,
    open_account,
    submit,
    transfer,
)

if TYPE_CHECKING:
    from services.ledger.tests.ledger_helpers import Stub

PENDING = resources_pb2.TransferFlags(pending=True)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(ledger_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(ledger_database)
    yield engine
    await engine.dispose()


async def _plain_transfers(ledger: Stub, prefix: str, count: int) -> list[str]:
    """``count`` posted (not pending) transfers, ids ``{prefix}-{i:05}``."""
    debit, credit = await open_account(ledger, "source"), await open_account(ledger, "sink")
    ids = [f"{prefix}-{i:05}" for i in range(count)]
    for start in range(0, count, MAX_BATCH):
        chunk = [transfer(debit, credit, 1, transfer_id=i) for i in ids[start : start + MAX_BATCH]]
        assert await submit(ledger, *chunk) == [T.CREATE_TRANSFER_RESULT_OK] * len(chunk)
    return ids


async def _hand_made_timeouts(engine: AsyncEngine, prefix: str, expires_at: datetime) -> None:
    """A ``pending_timeouts`` row due at ``expires_at`` for each transfer of ``prefix``."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO pending_timeouts (transfer_id, expires_at)"
                " SELECT id, CAST(:expires_at AS timestamptz) FROM transfers"
                " WHERE id LIKE :pattern"
            ),
            {"expires_at": expires_at, "pattern": f"{prefix}-%"},
        )


async def test_a_due_hold_expires_behind_more_unexpirable_rows_than_a_page(
    ledger: Stub, database: AsyncEngine
) -> None:
    prefix = new_id("stuck")
    await _plain_transfers(ledger, prefix, BATCH + 1)
    await _hand_made_timeouts(database, prefix, datetime.now(UTC) - timedelta(hours=1))

    funding = await open_account(ledger, "funding")
    wallet = await open_account(ledger, "wallet", flags=WALLET)
    shop = await open_account(ledger, "shop")
    assert await submit(ledger, transfer(funding, wallet, 300)) == [T.CREATE_TRANSFER_RESULT_OK]
    hold = transfer(wallet, shop, 300, flags=PENDING, timeout=1)
    assert await submit(ledger, hold) == [T.CREATE_TRANSFER_RESULT_OK]
    assert await balances(ledger, wallet) == (300, 0, 0, 300)
    await asyncio.sleep(1.2)

    # An expirer of our own, as another replica: one pass must reach the hold (the
    # server's expirer may get there first; either way the pass leaves it voided).
    batcher = Batcher(BatchWriter(database), max_events=16_384)
    expirer = Expirer(database, batcher, interval=60)
    async with batcher.running():
        await expirer.expire_due()
        assert await balances(ledger, wallet) == (0, 0, 0, 300)
        expiry = await ledger.LookupTransfers(
            service_pb2.LookupTransfersRequest(ids=[f"@expiry:{hold.id}"])
        )
        [recorded] = expiry.transfers
        assert recorded.flags.void_pending_transfer
        assert recorded.pending_id == hold.id
        # Nothing left that can expire: the next pass walks the stuck rows and stops.
        assert await asyncio.wait_for(expirer.expire_due(), timeout=30) == 0

    # The hand-made rows are the verifier's evidence: the expirer leaves them.
    async with database.connect() as conn:
        left = await conn.scalar(
            text("SELECT count(*) FROM pending_timeouts WHERE transfer_id LIKE :pattern"),
            {"pattern": f"{prefix}-%"},
        )
    assert left == BATCH + 1


class _RecordingBatcher:
    """Stands in for the batcher: records the ids each page hands it, expires nothing."""

    def __init__(self) -> None:
        self.pages: list[list[str]] = []

    async def expire(self, pending_ids: Sequence[str]) -> int:
        self.pages.append(list(pending_ids))
        return 0


async def test_a_pass_hands_over_each_due_row_once_in_small_pages(
    ledger: Stub, database: AsyncEngine
) -> None:
    """Ties on ``expires_at``, a last page that is exactly full, and rows not yet due."""
    tied, later, future = new_id("tied"), new_id("later"), new_id("future")
    tied_ids = await _plain_transfers(ledger, tied, 7)
    later_ids = await _plain_transfers(ledger, later, 2)
    await _plain_transfers(ledger, future, 3)
    await _hand_made_timeouts(database, tied, datetime(2020, 1, 1, tzinfo=UTC))
    await _hand_made_timeouts(database, later, datetime(2020, 1, 1, 0, 0, 1, tzinfo=UTC))
    await _hand_made_timeouts(database, future, datetime(2100, 1, 1, tzinfo=UTC))
    # Due: our 9 rows only (the table's other rows are from now, and 2100 is not due).
    now = datetime(2020, 1, 1, 0, 0, 2, tzinfo=UTC)

    for page in (1, 2, 3, 4, 9, BATCH):
        recorder = _RecordingBatcher()
        expirer = Expirer(database, cast("Batcher", recorder), interval=60, page=page)
        assert await asyncio.wait_for(expirer.expire_due(now), timeout=30) == 0
        assert all(0 < len(p) <= page for p in recorder.pages)
        handed = [i for p in recorder.pages for i in p]
        assert handed == tied_ids + later_ids

    # The keyset itself: pages of 3 over the 9, the last one exactly full.
    async with pg.connection(database) as conn:
        pages, after = [], None
        for _ in range(3):
            rows = await pg.due_timeouts(conn, now, 3, after)
            pages.append([transfer_id for _, transfer_id in rows])
            after = rows[-1]
        assert await pg.due_timeouts(conn, now, 3, after) == []
    assert pages == [tied_ids[0:3], tied_ids[3:6], [tied_ids[6], *later_ids]]
