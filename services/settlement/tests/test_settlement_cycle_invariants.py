"""Whatever is recorded and wherever the cuts fall: every closed cycle sums to zero, a
participant's cycles add up to its lifetime position, and every position is the netting of
the obligations listed for it. Lists page without skips or repeats, and refuse tokens they
did not issue for the request."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING, cast

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openloop.settlement.v1 import resources_pb2, service_pb2, service_pb2_grpc
from services.settlement.tests.settlement_helpers import (
    close_open_cycle,
    cycle_positions,
    error_of,
    obligations,
    open_cycle,
    record,
)

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub

_examples = itertools.count()

steps = st.lists(
    st.one_of(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 10_000_000)),
        st.just(("close",)),
    ),
    min_size=1,
    max_size=25,
)


async def _all_cycles(
    settlement: Stub, page_size: int = 100
) -> list[resources_pb2.SettlementCycle]:
    found: list[resources_pb2.SettlementCycle] = []
    token = ""
    while True:
        page = await settlement.ListSettlementCycles(
            service_pb2.ListSettlementCyclesRequest(page_size=page_size, page_token=token)
        )
        found.extend(page.settlement_cycles)
        token = page.next_page_token
        if not token:
            return found


@settings(max_examples=15, deadline=None)
@given(sequence=steps, page_size=st.integers(1, 5))
async def test_cycles_positions_and_obligations_always_agree(
    settlement: Stub, sequence: list[tuple[object, ...]], page_size: int
) -> None:
    example = next(_examples)
    banks = [f"participants/inv{example}-{name}" for name in "abcd"]
    touched_cycles = {await open_cycle(settlement)}
    for index, step in enumerate(sequence):
        if step == ("close",):
            touched_cycles.add((await close_open_cycle(settlement)).next_cycle)
            continue
        debit, credit, amount = cast("tuple[int, int, int]", step)
        await record(settlement, banks[debit], banks[credit], amount, f"inv{example}-{index}")

    cycles = {c.name: c for c in await _all_cycles(settlement)}
    summed: dict[str, list[int]] = {bank: [0, 0] for bank in banks}
    for cycle in touched_cycles:
        report = await cycle_positions(settlement, cycle, page_size)
        if cycles[cycle].state != resources_pb2.SettlementCycle.STATE_OPEN:
            assert sum(net for net, _ in report.values()) == 0, cycle
        listed = await obligations(settlement, cycle, page_size=page_size)
        net: Counter[str] = Counter()
        count: Counter[str] = Counter()
        for o in listed:
            assert o.cycle == cycle
            if o.inter_participant:
                net[o.debit_participant] -= o.amount.amount_satang
                net[o.credit_participant] += o.amount.amount_satang
                count[o.debit_participant] += 1
                count[o.credit_participant] += 1
        for bank in banks:
            assert report.get(bank, (0, 0)) == (net[bank], count[bank])
            summed[bank][0] += net[bank]
            summed[bank][1] += count[bank]

    for bank in banks:
        lifetime = await settlement.GetPosition(
            service_pb2.GetPositionRequest(name=f"{bank}/position")
        )
        position = lifetime.position
        assert [position.net_position.amount_satang, position.transfer_count] == summed[bank]
        # Nothing is settled in this module: all of it is still due.
        assert position.unsettled_position == position.net_position
        # Across cycles, the participant's own list holds each of its obligations once.
        mine = await obligations(settlement, "settlementCycles/-", bank, page_size)
        keys = [(int(o.cycle.split("/")[1]), o.transfer_id) for o in mine]
        assert keys == sorted(set(keys))
        expected = {
            f"inv{example}-{i}"
            for i, s in enumerate(sequence)
            if s != ("close",) and bank in (banks[cast("int", s[0])], banks[cast("int", s[1])])
        }
        assert {o.transfer_id for o in mine} == expected


@pytest.mark.parametrize("page_size", [1, 2, 3, 1000])
async def test_cycles_page_newest_first_without_skips_or_repeats(
    settlement: Stub, page_size: int
) -> None:
    for _ in range(3):
        await close_open_cycle(settlement)
    everything = await _all_cycles(settlement, 1000)
    numbers = [int(c.name.split("/")[1]) for c in everything]
    assert numbers == list(range(numbers[0], 0, -1))
    assert [c.name for c in await _all_cycles(settlement, page_size)] == [
        c.name for c in everything
    ]


async def _tokens(settlement: Stub) -> dict[str, str]:
    """A next-page token from each list (enough rows exist after the tests above)."""
    cycle = (await close_open_cycle(settlement)).settlement_cycle.name
    await record(settlement, "participants/tok-a", "participants/tok-b", 1)
    await record(settlement, "participants/tok-b", "participants/tok-c", 1)
    cycle = (await close_open_cycle(settlement)).settlement_cycle.name
    cycles = await settlement.ListSettlementCycles(
        service_pb2.ListSettlementCyclesRequest(page_size=1)
    )
    positions = await settlement.ListCyclePositions(
        service_pb2.ListCyclePositionsRequest(parent=cycle, page_size=1)
    )
    listed = await settlement.ListObligations(
        service_pb2.ListObligationsRequest(parent=cycle, page_size=1)
    )
    lifetime = await settlement.ListPositions(service_pb2.ListPositionsRequest(page_size=1))
    tokens = {
        "cycles": cycles.next_page_token,
        "positions": positions.next_page_token,
        "obligations": listed.next_page_token,
        "lifetime": lifetime.next_page_token,
        "cycle": cycle,
    }
    assert all(tokens.values())
    return tokens


async def test_page_tokens_work_only_for_the_request_they_were_issued_for(
    settlement: Stub,
) -> None:
    t = await _tokens(settlement)
    cycle, other = t["cycle"], "settlementCycles/1"
    refused = [
        settlement.ListSettlementCycles(
            service_pb2.ListSettlementCyclesRequest(page_token=t["positions"])
        ),
        settlement.ListSettlementCycles(
            service_pb2.ListSettlementCyclesRequest(
                page_token=t["cycles"], state=resources_pb2.SettlementCycle.STATE_CLOSED
            )
        ),
        settlement.ListCyclePositions(
            service_pb2.ListCyclePositionsRequest(parent=other, page_token=t["positions"])
        ),
        settlement.ListCyclePositions(
            service_pb2.ListCyclePositionsRequest(parent=cycle, page_token=t["lifetime"])
        ),
        settlement.ListObligations(
            service_pb2.ListObligationsRequest(parent=other, page_token=t["obligations"])
        ),
        settlement.ListObligations(
            service_pb2.ListObligationsRequest(
                parent=cycle, participant="participants/tok-a", page_token=t["obligations"]
            )
        ),
        settlement.ListObligations(
            service_pb2.ListObligationsRequest(parent="settlementCycles/-", page_token=t["cycles"])
        ),
        settlement.ListPositions(service_pb2.ListPositionsRequest(page_token=t["cycles"])),
    ]
    for call in refused:
        code, reason, metadata = await error_of(call)
        assert (code, reason, metadata["field"]) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
            "page_token",
        )
    # The right request takes them.
    second = await settlement.ListObligations(
        service_pb2.ListObligationsRequest(parent=cycle, page_size=1, page_token=t["obligations"])
    )
    assert len(second.obligations) == 1


@settings(max_examples=60, deadline=None)
@given(token=st.one_of(st.text(max_size=80), st.binary(max_size=60).map(lambda b: b.hex())))
async def test_any_token_we_did_not_issue_is_invalid_never_internal(
    settlement: Stub, token: str
) -> None:
    if not token:
        return
    for call in (
        settlement.ListSettlementCycles(service_pb2.ListSettlementCyclesRequest(page_token=token)),
        settlement.ListObligations(
            service_pb2.ListObligationsRequest(parent="settlementCycles/-", page_token=token)
        ),
    ):
        code, _, metadata = await error_of(call)
        assert (code, metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token")
