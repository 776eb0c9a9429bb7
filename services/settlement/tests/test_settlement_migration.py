"""Migration 0002 puts every obligation recorded before cycles existed into cycle 1, loses
and double counts nothing, and refuses to carry positions that disagree with obligations."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime import migrations
from openloop_runtime.operator_calls import operator_channel
from openloop_runtime.server import running_server
from openloop_settlement.app import MIGRATIONS_DIR, build
from openloop_settlement.config import SettlementSettings
from openloop_settlement.tables import metadata
from services.settlement.tests.settlement_helpers import (
    OPERATOR_KEYS,
    cycle_positions,
    operator_token,
    record,
)

_BEFORE_CYCLES = """
INSERT INTO obligations
    (transfer_id, debit_participant_id, credit_participant_id, amount, inter_participant,
     record_time)
VALUES ('old-1', 'bank-a', 'bank-b', 700, true, '2025-01-02T03:04:05Z'),
       ('old-2', 'bank-b', 'bank-c', 200, true, '2025-01-03T00:00:00Z'),
       ('old-3', 'bank-c', 'bank-c', 50, false, '2025-01-04T00:00:00Z');
INSERT INTO positions (participant_id, net_position, transfer_count)
VALUES ('bank-a', -700, 1), ('bank-b', {bank_b}, 2), ('bank-c', 200, 1);
"""


async def _database_before_cycles(
    fresh_database: Callable[[str], Awaitable[str]], bank_b: int
) -> str:
    url = await fresh_database("settlement_migration")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url, "0001")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for statement in _BEFORE_CYCLES.format(bank_b=bank_b).split(";"):
            if statement.strip():
                await conn.execute(text(statement))
    await engine.dispose()
    return url


async def test_existing_obligations_open_the_first_cycle_exactly_once(
    fresh_database: Callable[[str], Awaitable[str]],
) -> None:
    url = await _database_before_cycles(fresh_database, 500)
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    settings = SettlementSettings(port=0, database_url=url, operator_keys=OPERATOR_KEYS)
    async with (
        running_server("settlement.openloop.dev", settings, build(settings)) as running,
        operator_channel(f"127.0.0.1:{running.port}", operator_token()) as channel,
    ):
        settlement = service_pb2_grpc.SettlementServiceStub(channel)
        cycles = await settlement.ListSettlementCycles(service_pb2.ListSettlementCyclesRequest())
        assert [(c.name, c.state) for c in cycles.settlement_cycles] == [("settlementCycles/1", 1)]
        first = cycles.settlement_cycles[0]
        assert first.open_time.ToJsonString() == "2025-01-02T03:04:05Z"  # the first obligation's
        listed = await settlement.ListObligations(
            service_pb2.ListObligationsRequest(parent="settlementCycles/1")
        )
        assert [o.transfer_id for o in listed.obligations] == ["old-1", "old-2", "old-3"]
        assert await cycle_positions(settlement, "settlementCycles/1") == {  # type: ignore[arg-type]
            "participants/bank-a": (-700, 1),
            "participants/bank-b": (500, 2),
            "participants/bank-c": (200, 1),
        }
        # Recording goes on in cycle 1; the first close cuts old and new together.
        new = await record(settlement, "participants/bank-c", "participants/bank-a", 100)  # type: ignore[arg-type]
        assert new.cycle == "settlementCycles/1"
        closed = await settlement.CloseSettlementCycle(
            service_pb2.CloseSettlementCycleRequest(name="settlementCycles/1", request_id="first")
        )
        assert closed.next_cycle == "settlementCycles/2"
        position = await settlement.GetPosition(
            service_pb2.GetPositionRequest(name="participants/bank-a/position")
        )
        assert position.position.net_position.amount_satang == -600
        assert position.position.transfer_count == 2
    assert await migrations.schema_drift(url, metadata) == []


async def test_positions_that_disagree_with_obligations_stop_the_migration(
    fresh_database: Callable[[str], Awaitable[str]],
) -> None:
    url = await _database_before_cycles(fresh_database, 501)  # bank-b one satang off
    with pytest.raises(RuntimeError, match="disagree"):
        await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        tables = await conn.scalar(text("SELECT to_regclass('settlement_cycles')"))
    await engine.dispose()
    assert (version, tables) == ("0001", None)  # nothing of the migration was left behind
