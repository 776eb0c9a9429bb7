"""ListPositions pages through every position in participant order (AIP-158)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from openloop.settlement.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_runtime.errors import error_info_of
from openloop_runtime.money import thb

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub

BANKS = [f"participants/bank-{i:03d}" for i in range(25)]


async def _list(
    settlement: Stub, page_size: int, token: str = ""
) -> service_pb2.ListPositionsResponse:
    return await settlement.ListPositions(
        service_pb2.ListPositionsRequest(page_size=page_size, page_token=token)
    )


async def _all_pages(settlement: Stub, page_size: int) -> list[list[resources_pb2.Position]]:
    pages, token = [], ""
    while True:
        response = await _list(settlement, page_size, token)
        pages.append(list(response.positions))
        token = response.next_page_token
        if not token:
            return pages


async def test_paging_visits_every_position_once_in_order(settlement: Stub) -> None:
    # bank-000 pays bank-001, bank-002 pays bank-003, ...; bank-024 pays itself (no position).
    for i in range(0, 24, 2):
        await settlement.RecordTransfer(
            service_pb2.RecordTransferRequest(
                transfer_id=f"list-{i}",
                debit_participant=BANKS[i],
                credit_participant=BANKS[i + 1],
                amount=thb(100 + i),
            )
        )
    await settlement.RecordTransfer(
        service_pb2.RecordTransferRequest(
            transfer_id="list-self",
            debit_participant=BANKS[24],
            credit_participant=BANKS[24],
            amount=thb(1),
        )
    )

    pages = await _all_pages(settlement, 5)
    assert [len(page) for page in pages] == [5, 5, 5, 5, 4]
    listed = [p for page in pages for p in page]
    assert [p.participant for p in listed] == BANKS[:24]
    assert [p.name for p in listed] == [f"{b}/position" for b in BANKS[:24]]
    assert listed[0].net_position.amount_satang == -100
    assert listed[1].net_position.amount_satang == 100
    assert sum(p.net_position.amount_satang for p in listed) == 0


async def test_an_exact_last_page_has_no_next_token(settlement: Stub) -> None:
    pages = await _all_pages(settlement, 12)
    assert [len(page) for page in pages] == [12, 12]


async def test_the_default_page_holds_everything_here(settlement: Stub) -> None:
    response = await _list(settlement, 0)
    assert len(response.positions) == 24
    assert response.next_page_token == ""
    response = await _list(settlement, 100_000)
    assert len(response.positions) == 24


@pytest.mark.parametrize(
    ("page_size", "token", "field"),
    [(-1, "", "page_size"), (10, "not base64!", "page_token"), (10, "QkFOSw==", "page_token")],
)
async def test_bad_paging_arguments_are_invalid(
    settlement: Stub, page_size: int, token: str, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _list(settlement, page_size, token)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info_of(caught.value)
    assert info is not None
    assert (info.reason, info.metadata["field"]) == ("INVALID_FIELD", field)
