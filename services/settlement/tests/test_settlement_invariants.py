"""Whatever is recorded, in whatever order and however concurrently, positions sum to zero."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop.settlement.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_runtime.money import thb

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub

BANKS = [f"participants/bank-{name}" for name in ("a", "b", "c", "d")]
_examples = itertools.count()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(settlement_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settlement_database)
    yield engine
    await engine.dispose()


async def _sum_of_positions(database: AsyncEngine) -> int:
    async with database.connect() as conn:
        total = await conn.scalar(text("SELECT coalesce(sum(net_position), 0) FROM positions"))
    return int(total)


async def _positions(settlement: Stub, banks: list[str]) -> dict[str, tuple[int, int]]:
    found = {}
    for bank in banks:
        response = await settlement.GetPosition(
            service_pb2.GetPositionRequest(name=f"{bank}/position")
        )
        position = response.position
        found[bank] = (position.net_position.amount_satang, position.transfer_count)
    return found


transfers = st.lists(
    st.tuples(
        st.integers(0, 7),  # transfer id, from a small pool so ids repeat
        st.sampled_from(range(len(BANKS))),
        st.sampled_from(range(len(BANKS))),
        st.integers(1, 10_000_000),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=25, deadline=None)
@given(sequence=transfers)
async def test_positions_always_sum_to_zero(
    settlement: Stub, database: AsyncEngine, sequence: list[tuple[int, int, int, int]]
) -> None:
    example = next(_examples)
    banks = [f"{bank}-{example}" for bank in BANKS]
    recorded: dict[str, tuple[str, str, int]] = {}
    expected = {bank: [0, 0] for bank in banks}
    for index, debit, credit, amount in sequence:
        transfer_id = f"h{example}-{index}"
        fields = (banks[debit], banks[credit], amount)
        request = service_pb2.RecordTransferRequest(
            transfer_id=transfer_id,
            debit_participant=fields[0],
            credit_participant=fields[1],
            amount=thb(amount),
        )
        if recorded.get(transfer_id, fields) != fields:
            with pytest.raises(grpc.aio.AioRpcError) as conflict:
                await settlement.RecordTransfer(request)
            assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS
            continue
        await settlement.RecordTransfer(request)
        if transfer_id in recorded:
            continue
        recorded[transfer_id] = fields
        if debit != credit:
            expected[fields[0]][0] -= amount
            expected[fields[1]][0] += amount
            expected[fields[0]][1] += 1
            expected[fields[1]][1] += 1

    positions = await _positions(settlement, banks)
    assert positions == {bank: tuple(value) for bank, value in expected.items()}
    assert sum(net for net, _ in positions.values()) == 0
    assert await _sum_of_positions(database) == 0


async def test_concurrent_recording_with_duplicates_applies_each_transfer_once(
    settlement: Stub, database: AsyncEngine
) -> None:
    rng = random.Random(5)
    banks = [f"{bank}-concurrent" for bank in BANKS]
    distinct = [
        service_pb2.RecordTransferRequest(
            transfer_id=f"c-{i}",
            debit_participant=debit,
            credit_participant=credit,
            amount=thb(rng.randint(1, 1_000_000)),
        )
        for i in range(60)
        for debit, credit in [rng.sample(banks, 2)]
    ]
    # Every transfer is sent one to four times, all at once, in shuffled order.
    requests = [r for r in distinct for _ in range(rng.randint(1, 4))]
    rng.shuffle(requests)
    responses = await asyncio.gather(*(settlement.RecordTransfer(r) for r in requests))

    first_by_id: dict[str, resources_pb2.Obligation] = {}
    for response in responses:
        first = first_by_id.setdefault(response.obligation.transfer_id, response.obligation)
        assert response.obligation == first
    expected_net: Counter[str] = Counter()
    expected_count: Counter[str] = Counter()
    for r in distinct:
        expected_net[r.debit_participant] -= r.amount.amount_satang
        expected_net[r.credit_participant] += r.amount.amount_satang
        expected_count[r.debit_participant] += 1
        expected_count[r.credit_participant] += 1
    positions = await _positions(settlement, banks)
    assert positions == {b: (expected_net[b], expected_count[b]) for b in banks}
    assert await _sum_of_positions(database) == 0


async def test_concurrent_conflicting_uses_of_one_id_record_exactly_one(
    settlement: Stub, database: AsyncEngine
) -> None:
    banks = [f"{bank}-conflict" for bank in BANKS]
    requests = [
        service_pb2.RecordTransferRequest(
            transfer_id="contested",
            debit_participant=debit,
            credit_participant=credit,
            amount=thb(amount),
        )
        for debit, credit in itertools.permutations(banks, 2)
        for amount in (10, 20)
    ]
    outcomes = await asyncio.gather(
        *(settlement.RecordTransfer(r) for r in requests), return_exceptions=True
    )
    winners = [o for o in outcomes if isinstance(o, service_pb2.RecordTransferResponse)]
    losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert len(losers) == len(requests) - 1
    assert {e.code() for e in losers} == {grpc.StatusCode.ALREADY_EXISTS}
    won = winners[0].obligation
    positions = await _positions(settlement, banks)
    amount = won.amount.amount_satang
    assert positions[won.debit_participant] == (-amount, 1)
    assert positions[won.credit_participant] == (amount, 1)
    assert sum(net for net, _ in positions.values()) == 0
    assert await _sum_of_positions(database) == 0
