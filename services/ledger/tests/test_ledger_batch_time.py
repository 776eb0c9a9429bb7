"""A batch's time never goes back along the journal, whatever the replicas' clocks do."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from openloop.ledger.v1 import resources_pb2, service_pb2
from openloop_ledger.writes import batch_time

if TYPE_CHECKING:
    from openloop.ledger.v1 import service_pb2_grpc

    Stub = service_pb2_grpc.LedgerServiceAsyncStub

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_clock_is_taken_unless_it_is_behind_the_last_batch() -> None:
    assert batch_time(NOW, None) == NOW
    assert batch_time(NOW, NOW - timedelta(microseconds=1)) == NOW
    assert batch_time(NOW, NOW) == NOW
    assert batch_time(NOW, NOW + timedelta(milliseconds=3)) == NOW + timedelta(milliseconds=3)


def test_a_clock_far_behind_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="openloop_ledger.writes"):
        batch_time(NOW, NOW + timedelta(milliseconds=500))
        assert caplog.records == []
        batch_time(NOW, NOW + timedelta(seconds=5))
    (record,) = caplog.records
    assert record.behind_seconds == 5.0  # type: ignore[attr-defined]


async def _open(ledger: Stub) -> str:
    account_id = f"acct-{uuid.uuid4().hex[:12]}"
    account = resources_pb2.Account(
        id=account_id, ledger=764, code=1, participant="participants/bank-a"
    )
    response = await ledger.CreateAccounts(service_pb2.CreateAccountsRequest(accounts=[account]))
    assert list(response.results) == [resources_pb2.CREATE_ACCOUNT_RESULT_OK]
    return account_id


async def _pay(ledger: Stub, debit: str, credit: str) -> datetime:
    """One transfer; its create_time as recorded."""
    transfer_id = f"t-{uuid.uuid4().hex[:12]}"
    transfer = resources_pb2.Transfer(
        id=transfer_id, debit_account_id=debit, credit_account_id=credit, amount=1, ledger=764,
        code=1,
    )  # fmt: skip
    response = await ledger.CreateTransfers(
        service_pb2.CreateTransfersRequest(transfers=[transfer])
    )
    assert list(response.results) == [resources_pb2.CREATE_TRANSFER_RESULT_OK]
    found = await ledger.LookupTransfers(service_pb2.LookupTransfersRequest(ids=[transfer_id]))
    return found.transfers[0].create_time.ToDatetime(tzinfo=UTC)


async def test_a_replica_whose_clock_is_behind_never_records_an_earlier_time(
    ledger: Stub, ledger_database: str
) -> None:
    """Another replica's clock ran an hour ahead and wrote the last batch: this replica's
    batches take that time until its own clock passes it, so create_time follows the
    journal's order."""
    debit, credit = await _open(ledger), await _open(ledger)
    engine = create_async_engine(ledger_database)
    try:
        ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE journal SET last_time = :t"), {"t": ahead})
        assert await _pay(ledger, debit, credit) == ahead
        assert await _pay(ledger, debit, credit) == ahead
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE journal SET last_time = :t"), {"t": ahead - timedelta(hours=2)}
            )
        before = datetime.now(UTC)
        assert before <= await _pay(ledger, debit, credit) <= datetime.now(UTC)
        async with engine.connect() as conn:
            times = list(
                (
                    await conn.execute(text("SELECT create_time FROM transfers ORDER BY position"))
                ).scalars()
            )
            last = (await conn.execute(text("SELECT last_time FROM journal"))).scalar_one()
        assert last == times[-1]
        assert times[:2] == [ahead, ahead]
    finally:
        await engine.dispose()
