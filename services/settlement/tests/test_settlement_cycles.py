"""Settlement cycles through a real server and PostgreSQL: the cut, its idempotency, the
SETTLED mark, and what each refusal says."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import grpc
import pytest

from openloop.settlement.v1 import resources_pb2, service_pb2, service_pb2_grpc
from services.settlement.tests.settlement_helpers import (
    close_open_cycle,
    cycle_positions,
    error_of,
    new_bank,
    obligations,
    open_cycle,
    record,
)

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub

Cycle = resources_pb2.SettlementCycle
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


async def _cycle(settlement: Stub, name: str) -> resources_pb2.SettlementCycle:
    reply = await settlement.GetSettlementCycle(service_pb2.GetSettlementCycleRequest(name=name))
    return reply.settlement_cycle


async def _close(
    settlement: Stub, name: str, request_id: str
) -> service_pb2.CloseSettlementCycleResponse:
    return await settlement.CloseSettlementCycle(
        service_pb2.CloseSettlementCycleRequest(name=name, request_id=request_id)
    )


async def _settle(
    settlement: Stub, name: str, request_id: str
) -> service_pb2.SettleSettlementCycleResponse:
    return await settlement.SettleSettlementCycle(
        service_pb2.SettleSettlementCycleRequest(name=name, request_id=request_id)
    )


async def _position(settlement: Stub, bank: str) -> resources_pb2.Position:
    reply = await settlement.GetPosition(service_pb2.GetPositionRequest(name=f"{bank}/position"))
    return reply.position


async def test_the_first_cycle_is_open_and_stamps_every_obligation(settlement: Stub) -> None:
    first = await _cycle(settlement, "settlementCycles/1")
    assert first.state == Cycle.STATE_OPEN
    assert first.HasField("open_time")
    assert not first.HasField("close_time")
    payer, payee = new_bank(), new_bank()
    obligation = await record(settlement, payer, payee, 1_000, "first-cycle-1")
    assert obligation.cycle == "settlementCycles/1"
    assert obligation.name == "settlementCycles/1/obligations/first-cycle-1"


async def test_closing_cuts_positions_and_opens_the_next_cycle(settlement: Stub) -> None:
    payer, payee = new_bank(), new_bank()
    before = await record(settlement, payer, payee, 70_000)
    closed = await close_open_cycle(settlement)
    cycle = closed.settlement_cycle
    assert cycle.name == before.cycle
    assert cycle.state == Cycle.STATE_CLOSED
    assert cycle.close_time.ToDatetime() >= cycle.open_time.ToDatetime()
    assert closed.next_cycle == f"settlementCycles/{int(cycle.name.split('/')[1]) + 1}"
    assert (await _cycle(settlement, closed.next_cycle)).state == Cycle.STATE_OPEN
    assert await open_cycle(settlement) == closed.next_cycle

    after = await record(settlement, payee, payer, 20_000)
    assert after.cycle == closed.next_cycle
    report = await cycle_positions(settlement, cycle.name)
    assert (report[payer], report[payee]) == ((-70_000, 1), (70_000, 1))
    assert sum(net for net, _ in report.values()) == 0
    now = await cycle_positions(settlement, closed.next_cycle)
    assert (now[payer], now[payee]) == ((20_000, 1), (-20_000, 1))

    # The lifetime position is the sum over the cycles; all of it is still unsettled.
    position = await _position(settlement, payer)
    assert position.net_position.amount_satang == -50_000
    assert position.transfer_count == 2
    assert position.unsettled_position.amount_satang == -50_000
    assert position.unsettled_cycle_count == 2

    one = await settlement.GetCyclePosition(
        service_pb2.GetCyclePositionRequest(name=f"{cycle.name}/positions/{payer[13:]}")
    )
    assert one.cycle_position.name == f"{cycle.name}/positions/{payer[13:]}"
    assert one.cycle_position.participant == payer
    assert one.cycle_position.net_position.amount_satang == -70_000
    untouched = await settlement.GetCyclePosition(
        service_pb2.GetCyclePositionRequest(name=f"{cycle.name}/positions/never-paid")
    )
    assert untouched.cycle_position.net_position.amount_satang == 0
    assert untouched.cycle_position.transfer_count == 0


async def test_a_retried_transfer_stays_in_the_cycle_it_was_first_recorded_in(
    settlement: Stub,
) -> None:
    payer, payee = new_bank(), new_bank()
    first = await record(settlement, payer, payee, 500, "retried-across-the-cut")
    await close_open_cycle(settlement)
    again = await record(settlement, payer, payee, 500, "retried-across-the-cut")
    assert again == first
    assert (await _position(settlement, payer)).net_position.amount_satang == -500
    assert payer not in await cycle_positions(settlement, await open_cycle(settlement))


async def test_closing_is_idempotent_under_its_request_id(settlement: Stub) -> None:
    cycle = await open_cycle(settlement)
    request_id = f"close-{uuid.uuid4().hex}"
    first = await _close(settlement, cycle, request_id)
    await record(settlement, new_bank(), new_bank(), 10)
    again = await _close(settlement, cycle, request_id)
    assert again == first
    assert await open_cycle(settlement) == first.next_cycle

    # The same key for another cycle is a client's mistake; another key finds it closed.
    code, reason, metadata = await error_of(_close(settlement, first.next_cycle, request_id))
    assert (code, reason, metadata["field"]) == (INVALID, "IDEMPOTENCY_KEY_REUSED", "request_id")
    assert metadata["resource"] == cycle
    code, reason, metadata = await error_of(_close(settlement, cycle, uuid.uuid4().hex))
    assert (code, reason) == (PRECONDITION, "SETTLEMENT_CYCLE_STATE_CONFLICT")
    assert (metadata["resource"], metadata["state"]) == (cycle, "CLOSED")
    assert await open_cycle(settlement) == first.next_cycle


async def test_concurrent_closes_of_one_cycle_close_it_once(settlement: Stub) -> None:
    cycle = await open_cycle(settlement)
    twins = await asyncio.gather(*(_close(settlement, cycle, "twin-close") for _ in range(6)))
    assert all(reply == twins[0] for reply in twins)
    rivals = await asyncio.gather(
        *(_close(settlement, twins[0].next_cycle, uuid.uuid4().hex) for _ in range(6)),
        return_exceptions=True,
    )
    won = [r for r in rivals if isinstance(r, service_pb2.CloseSettlementCycleResponse)]
    lost = [r for r in rivals if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1
    assert len(lost) == 5
    assert {e.code() for e in lost} == {PRECONDITION}
    # Two closes, so exactly two cycles after the first are there, the last one OPEN.
    assert await open_cycle(settlement) == won[0].next_cycle
    listed = await settlement.ListSettlementCycles(
        service_pb2.ListSettlementCyclesRequest(page_size=3)
    )
    assert [c.name for c in listed.settlement_cycles] == [
        won[0].next_cycle,
        twins[0].next_cycle,
        cycle,
    ]


async def test_a_closed_cycle_is_settled_once(settlement: Stub) -> None:
    payer, payee = new_bank(), new_bank()
    await record(settlement, payer, payee, 9_900)
    cycle = await open_cycle(settlement)
    code, reason, metadata = await error_of(_settle(settlement, cycle, uuid.uuid4().hex))
    assert (code, reason, metadata["state"]) == (
        PRECONDITION,
        "SETTLEMENT_CYCLE_STATE_CONFLICT",
        "OPEN",
    )
    await close_open_cycle(settlement)
    settled = await _settle(settlement, cycle, "settle-once")
    assert settled.settlement_cycle.state == Cycle.STATE_SETTLED
    assert await _settle(settlement, cycle, "settle-once") == settled
    code, reason, metadata = await error_of(_settle(settlement, cycle, uuid.uuid4().hex))
    assert (code, reason, metadata["state"]) == (
        PRECONDITION,
        "SETTLEMENT_CYCLE_STATE_CONFLICT",
        "SETTLED",
    )
    code, reason, _ = await error_of(
        _settle(settlement, await open_cycle(settlement), "settle-once")
    )
    assert (code, reason) == (INVALID, "IDEMPOTENCY_KEY_REUSED")
    # Paid through the central bank: nothing of it is unsettled, the lifetime figure stays.
    position = await _position(settlement, payer)
    assert position.net_position.amount_satang == -9_900
    assert (position.unsettled_position.amount_satang, position.unsettled_cycle_count) == (0, 0)
    # A settled cycle still closes idempotently for the request that closed it.
    listed = await settlement.ListSettlementCycles(
        service_pb2.ListSettlementCyclesRequest(state=Cycle.STATE_SETTLED)
    )
    assert cycle in [c.name for c in listed.settlement_cycles]
    assert all(c.state == Cycle.STATE_SETTLED for c in listed.settlement_cycles)


async def test_an_auditor_ties_each_position_to_its_obligations(settlement: Stub) -> None:
    banks = [new_bank("audit") for _ in range(3)]
    await record(settlement, banks[0], banks[1], 100)
    await record(settlement, banks[1], banks[2], 40)
    await record(settlement, banks[2], banks[2], 7)  # inside one bank: listed, moves nothing
    cycle = (await close_open_cycle(settlement)).settlement_cycle.name
    await record(settlement, banks[2], banks[0], 1_000)  # the next cycle's
    report = await cycle_positions(settlement, cycle)
    for bank in banks:
        mine = await obligations(settlement, cycle, participant=bank, page_size=1)
        net = sum(
            (o.amount.amount_satang if o.credit_participant == bank else 0)
            - (o.amount.amount_satang if o.debit_participant == bank else 0)
            for o in mine
        )
        count = sum(o.inter_participant for o in mine)
        assert report.get(bank, (0, 0)) == (net, count)
        assert all(o.cycle == cycle for o in mine)
    everywhere = await obligations(settlement, "settlementCycles/-", participant=banks[0])
    assert [o.amount.amount_satang for o in everywhere] == [100, 1_000]
    found = await settlement.GetObligation(
        service_pb2.GetObligationRequest(
            name=f"settlementCycles/-/obligations/{everywhere[1].transfer_id}"
        )
    )
    assert found.obligation == everywhere[1]
    code, reason, _ = await error_of(
        settlement.GetObligation(
            service_pb2.GetObligationRequest(
                name=f"{cycle}/obligations/{everywhere[1].transfer_id}"
            )
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBLIGATION_NOT_FOUND")


async def test_a_cycle_position_can_overflow_before_the_lifetime_one_and_the_other_way(
    settlement: Stub,
) -> None:
    """A lifetime position is the sum of the cycle ones, not the larger: a bank paid in one
    cycle what it is paid in the next stands near zero for its lifetime while its OPEN
    cycle's position is at the limit, and the other way round. Either refusal names the
    position that cannot move, and records nothing."""
    bank, other = new_bank(), new_bank()
    bank_id = bank.removeprefix("participants/")
    await record(settlement, bank, other, 2**63 - 1)
    await close_open_cycle(settlement)
    await record(settlement, other, bank, 2**63 - 1)  # this cycle +max, lifetime 0
    cycle = await open_cycle(settlement)
    code, reason, metadata = await error_of(record(settlement, other, bank, 1))
    assert (code, reason) == (PRECONDITION, "POSITION_LIMIT_EXCEEDED")
    assert metadata == {"participant": bank, "resource": f"{cycle}/positions/{bank_id}"}
    assert (await _position(settlement, bank)).net_position.amount_satang == 0

    await close_open_cycle(settlement)
    await record(settlement, other, bank, 2**63 - 1)  # lifetime +max, spread over two cycles
    await close_open_cycle(settlement)
    code, reason, metadata = await error_of(record(settlement, other, bank, 1))
    assert (code, reason) == (PRECONDITION, "POSITION_LIMIT_EXCEEDED")
    assert metadata == {"participant": bank, "resource": f"{bank}/position"}
    assert (await _position(settlement, bank)).net_position.amount_satang == 2**63 - 1


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        (
            "GetSettlementCycle",
            service_pb2.GetSettlementCycleRequest(name="settlementCycles/0"),
            "name",
        ),
        (
            "GetSettlementCycle",
            service_pb2.GetSettlementCycleRequest(name="settlementCycles/01"),
            "name",
        ),
        ("GetSettlementCycle", service_pb2.GetSettlementCycleRequest(name="cycles/1"), "name"),
        (
            "GetSettlementCycle",
            service_pb2.GetSettlementCycleRequest(name="settlementCycles/99999999999999999999"),
            "name",
        ),
        (
            "GetSettlementCycle",
            service_pb2.GetSettlementCycleRequest(name="settlementCycles/-"),
            "name",
        ),
        (
            "CloseSettlementCycle",
            service_pb2.CloseSettlementCycleRequest(name="settlementCycles/1"),
            "request_id",
        ),
        (
            "CloseSettlementCycle",
            service_pb2.CloseSettlementCycleRequest(name="settlementCycles/1", request_id="a b"),
            "request_id",
        ),
        (
            "CloseSettlementCycle",
            service_pb2.CloseSettlementCycleRequest(name="", request_id="x"),
            "name",
        ),
        (  # the cut-off scheduler's ids: an operator's close under one would make it skip
            "CloseSettlementCycle",
            service_pb2.CloseSettlementCycleRequest(
                name="settlementCycles/1", request_id="cutoff:20990701T1600Z"
            ),
            "request_id",
        ),
        (
            "SettleSettlementCycle",
            service_pb2.SettleSettlementCycleRequest(
                name="settlementCycles/1", request_id="x" * 65
            ),
            "request_id",
        ),
        ("ListSettlementCycles", service_pb2.ListSettlementCyclesRequest(state=99), "state"),  # type: ignore[arg-type]
        (
            "ListSettlementCycles",
            service_pb2.ListSettlementCyclesRequest(page_size=-1),
            "page_size",
        ),
        (
            "GetCyclePosition",
            service_pb2.GetCyclePositionRequest(name="settlementCycles/1/positions/Bank"),
            "name",
        ),
        (
            "GetCyclePosition",
            service_pb2.GetCyclePositionRequest(name="settlementCycles/1/position/bank-a"),
            "name",
        ),
        (
            "ListCyclePositions",
            service_pb2.ListCyclePositionsRequest(parent="settlementCycles/-"),
            "parent",
        ),
        (
            "GetObligation",
            service_pb2.GetObligationRequest(name="settlementCycles/1/obligations/a/b"),
            "name",
        ),
        (
            "GetObligation",
            service_pb2.GetObligationRequest(name="settlementCycles/x/obligations/t1"),
            "name",
        ),
        (
            "ListObligations",
            service_pb2.ListObligationsRequest(parent="settlementCycles"),
            "parent",
        ),
        (
            "ListObligations",
            service_pb2.ListObligationsRequest(parent="settlementCycles/-", participant="bank-a"),
            "participant",
        ),
    ],
)
async def test_malformed_requests_are_invalid_and_name_the_field(
    settlement: Stub, method: str, request_: object, field: str
) -> None:
    code, reason, metadata = await error_of(getattr(settlement, method)(request_))
    assert (code, reason, metadata["field"]) == (INVALID, "INVALID_FIELD", field)


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("GetSettlementCycle", service_pb2.GetSettlementCycleRequest(name="settlementCycles/9999")),
        (
            "CloseSettlementCycle",
            service_pb2.CloseSettlementCycleRequest(name="settlementCycles/9999", request_id="r"),
        ),
        (
            "SettleSettlementCycle",
            service_pb2.SettleSettlementCycleRequest(name="settlementCycles/9999", request_id="r"),
        ),
        (
            "GetCyclePosition",
            service_pb2.GetCyclePositionRequest(name="settlementCycles/9999/positions/bank-a"),
        ),
        (
            "ListCyclePositions",
            service_pb2.ListCyclePositionsRequest(parent="settlementCycles/9999"),
        ),
        ("ListObligations", service_pb2.ListObligationsRequest(parent="settlementCycles/9999")),
    ],
)
async def test_a_cycle_that_does_not_exist_is_not_found(
    settlement: Stub, method: str, request_: object
) -> None:
    code, reason, metadata = await error_of(getattr(settlement, method)(request_))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "SETTLEMENT_CYCLE_NOT_FOUND")
    assert metadata["resource"] == "settlementCycles/9999"
