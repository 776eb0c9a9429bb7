"""Closing a cycle while transfers are recorded: each transfer lands wholly in one cycle,
closed cycles never change and balance, and a close is not starved by a steady flow of
recordings. Real PostgreSQL, real gRPC server, many concurrent callers."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop.settlement.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_dev.postgres import wait_for_lock_waiters
from openloop_runtime.money import thb

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub

CLOSED = resources_pb2.SettlementCycle.STATE_CLOSED
BANKS = [f"participants/flow-{name}" for name in ("a", "b", "c", "d", "e")]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(settlement_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settlement_database)
    yield engine
    await engine.dispose()


async def _open_cycle(settlement: Stub) -> str:
    reply = await settlement.ListSettlementCycles(
        service_pb2.ListSettlementCyclesRequest(page_size=1)
    )
    return reply.settlement_cycles[0].name


async def _cycle_report(settlement: Stub, cycle: str) -> dict[str, tuple[int, int]]:
    report: dict[str, tuple[int, int]] = {}
    token = ""
    while True:
        page = await settlement.ListCyclePositions(
            service_pb2.ListCyclePositionsRequest(parent=cycle, page_size=2, page_token=token)
        )
        for p in page.cycle_positions:
            assert p.participant not in report, "a participant listed twice"
            report[p.participant] = (p.net_position.amount_satang, p.transfer_count)
        token = page.next_page_token
        if not token:
            return report


async def _obligations(settlement: Stub, parent: str) -> list[resources_pb2.Obligation]:
    found: list[resources_pb2.Obligation] = []
    token = ""
    while True:
        page = await settlement.ListObligations(
            service_pb2.ListObligationsRequest(parent=parent, page_size=97, page_token=token)
        )
        found.extend(page.obligations)
        token = page.next_page_token
        if not token:
            return found


async def test_transfers_recorded_while_cycles_close_land_wholly_in_one_cycle(
    settlement: Stub,
) -> None:
    rng = random.Random(11)
    sent: dict[str, service_pb2.RecordTransferRequest] = {}
    answered_cycle: dict[str, str] = {}
    stop = asyncio.Event()
    ids = itertools.count()

    async def record_continuously() -> None:
        while not stop.is_set():
            debit, credit = rng.sample(BANKS, 2)
            request = service_pb2.RecordTransferRequest(
                transfer_id=f"flow-{next(ids)}",
                debit_participant=debit,
                credit_participant=credit,
                amount=thb(rng.randint(1, 5_000_000)),
            )
            sent[request.transfer_id] = request
            reply = await settlement.RecordTransfer(request)
            answered_cycle[request.transfer_id] = reply.obligation.cycle

    workers = [asyncio.create_task(record_continuously()) for _ in range(24)]
    closed: list[str] = []
    snapshots: dict[str, dict[str, tuple[int, int]]] = {}
    close_seconds: list[float] = []
    try:
        for _ in range(5):
            await asyncio.sleep(0.3)  # recordings in full flow
            cycle = await _open_cycle(settlement)
            started = time.monotonic()
            reply = await settlement.CloseSettlementCycle(
                service_pb2.CloseSettlementCycleRequest(name=cycle, request_id=uuid.uuid4().hex),
                timeout=10,
            )
            close_seconds.append(time.monotonic() - started)
            assert reply.settlement_cycle.state == CLOSED
            closed.append(cycle)
            # The report right after the cut, while recordings continue into the next cycle.
            snapshots[cycle] = await _cycle_report(settlement, cycle)
    finally:
        stop.set()
        await asyncio.gather(*workers)
    print("closes took", [f"{s:.3f}s" for s in close_seconds], "transfers", len(sent))

    # Every transfer is in exactly one cycle: the one its answer named.
    listed: dict[str, str] = {}
    for cycle in [*closed, await _open_cycle(settlement)]:
        for obligation in await _obligations(settlement, cycle):
            assert obligation.transfer_id not in listed, "a transfer in two cycles"
            listed[obligation.transfer_id] = cycle
    assert set(listed) == set(sent), "a transfer in no cycle"
    assert listed == answered_cycle

    for cycle in closed:
        # A closed cycle's report did not change while recording went on, and balances.
        assert await _cycle_report(settlement, cycle) == snapshots[cycle]
        assert sum(net for net, _ in snapshots[cycle].values()) == 0
        # It is exactly the netting of the obligations the cycle lists.
        expected_net: Counter[str] = Counter()
        expected_count: Counter[str] = Counter()
        for t, c in listed.items():
            if c == cycle:
                r = sent[t]
                expected_net[r.debit_participant] -= r.amount.amount_satang
                expected_net[r.credit_participant] += r.amount.amount_satang
                expected_count[r.debit_participant] += 1
                expected_count[r.credit_participant] += 1
        assert snapshots[cycle] == {
            bank: (expected_net[bank], expected_count[bank]) for bank in expected_count
        }
    # Transfers kept flowing into every cycle (the cut happened under load, not in a lull).
    per_cycle = Counter(listed.values())
    assert all(per_cycle[cycle] > 0 for cycle in closed), per_cycle


def _url(database: AsyncEngine) -> str:
    return database.url.render_as_string(hide_password=False)


async def test_a_close_waits_for_a_recording_in_flight_and_later_ones_wait_for_it(
    settlement: Stub, database: AsyncEngine
) -> None:
    cycle = await _open_cycle(settlement)
    bank_a, bank_b = "participants/inflight-a", "participants/inflight-b"
    async with database.connect() as held:
        # A recording in flight: it holds the open cycle the way RecordTransfer does
        # (SQLAlchemy begins the transaction; it stays open until the commit below).
        await held.execute(
            text("SELECT cycle_id FROM settlement_cycles WHERE state = 'OPEN' FOR SHARE")
        )
        close = asyncio.ensure_future(
            settlement.CloseSettlementCycle(
                service_pb2.CloseSettlementCycleRequest(name=cycle, request_id=uuid.uuid4().hex)
            )
        )
        await wait_for_lock_waiters(_url(database), 1)
        assert not close.done(), "the close did not wait for the recording in flight"
        later = asyncio.ensure_future(
            settlement.RecordTransfer(
                service_pb2.RecordTransferRequest(
                    transfer_id=f"after-cut-{uuid.uuid4().hex}",
                    debit_participant=bank_a,
                    credit_participant=bank_b,
                    amount=thb(100),
                )
            )
        )
        await wait_for_lock_waiters(_url(database), 2)
        assert not later.done(), "a recording overtook the waiting close"
        await held.commit()
    closed = await close
    recorded = await later
    assert closed.settlement_cycle.name == cycle
    assert recorded.obligation.cycle == closed.next_cycle
    assert (await _cycle_report(settlement, cycle)).get(bank_b) is None
