"""RecordTransfer, GetPosition and ListPositions through a real server and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import grpc
import pytest

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime.errors import error_info_of
from openloop_runtime.money import thb

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub


def _bank() -> str:
    return f"participants/bank-{uuid.uuid4().hex[:10]}"


def _transfer_id() -> str:
    return f"t-{uuid.uuid4().hex}"


def _request(
    debit: str, credit: str, amount: int, transfer_id: str | None = None
) -> service_pb2.RecordTransferRequest:
    return service_pb2.RecordTransferRequest(
        transfer_id=transfer_id or _transfer_id(),
        debit_participant=debit,
        credit_participant=credit,
        amount=thb(amount),
    )


async def _position(settlement: Stub, participant: str) -> tuple[int, int]:
    response = await settlement.GetPosition(
        service_pb2.GetPositionRequest(name=f"{participant}/position")
    )
    return response.position.net_position.amount_satang, response.position.transfer_count


async def _error(call: object) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    info = error_info_of(caught.value)
    assert info is not None
    assert info.domain == "settlement.openloop.dev"
    return caught.value.code(), info.reason, dict(info.metadata)


async def test_positions_move_by_exactly_the_amount_on_both_sides(settlement: Stub) -> None:
    payer, payee = _bank(), _bank()
    request = _request(payer, payee, 123_456)
    response = await settlement.RecordTransfer(request)

    obligation = response.obligation
    assert obligation.transfer_id == request.transfer_id
    assert (obligation.debit_participant, obligation.credit_participant) == (payer, payee)
    assert obligation.amount == thb(123_456)
    assert obligation.inter_participant
    assert obligation.record_time.seconds > 0
    assert await _position(settlement, payer) == (-123_456, 1)
    assert await _position(settlement, payee) == (123_456, 1)

    await settlement.RecordTransfer(_request(payee, payer, 6))
    assert await _position(settlement, payer) == (-123_450, 2)
    assert await _position(settlement, payee) == (123_450, 2)


async def test_a_position_reports_its_name_and_update_time(settlement: Stub) -> None:
    payer, payee = _bank(), _bank()
    await settlement.RecordTransfer(_request(payer, payee, 10))
    response = await settlement.GetPosition(
        service_pb2.GetPositionRequest(name=f"{payee}/position")
    )
    assert response.position.name == f"{payee}/position"
    assert response.position.participant == payee
    assert response.position.net_position.currency_code == "THB"
    assert response.position.HasField("update_time")


async def test_recording_a_transfer_again_moves_positions_once(settlement: Stub) -> None:
    payer, payee = _bank(), _bank()
    request = _request(payer, payee, 5_000)
    first = await settlement.RecordTransfer(request)
    again = await settlement.RecordTransfer(request)
    assert again.obligation == first.obligation
    assert await _position(settlement, payer) == (-5_000, 1)
    assert await _position(settlement, payee) == (5_000, 1)


async def test_a_transfer_inside_one_participant_changes_nothing(settlement: Stub) -> None:
    bank = _bank()
    response = await settlement.RecordTransfer(_request(bank, bank, 9_999))
    assert not response.obligation.inter_participant
    assert await _position(settlement, bank) == (0, 0)


@pytest.mark.parametrize("change", ["debit", "credit", "amount"])
async def test_a_reused_transfer_id_with_other_fields_is_a_conflict(
    settlement: Stub, change: str
) -> None:
    payer, payee, other = _bank(), _bank(), _bank()
    original = _request(payer, payee, 700)
    await settlement.RecordTransfer(original)
    reused = {
        "debit": _request(other, payee, 700, original.transfer_id),
        "credit": _request(payer, other, 700, original.transfer_id),
        "amount": _request(payer, payee, 701, original.transfer_id),
    }[change]
    code, reason, metadata = await _error(settlement.RecordTransfer(reused))
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "TRANSFER_ID_CONFLICT")
    assert metadata["transfer_id"] == original.transfer_id
    assert await _position(settlement, payer) == (-700, 1)
    assert await _position(settlement, payee) == (700, 1)
    assert await _position(settlement, other) == (0, 0)


@pytest.mark.parametrize(
    ("request_fields", "reason", "field"),
    [
        ({"transfer_id": "has space"}, "INVALID_FIELD", "transfer_id"),
        ({"debit_participant": "banks/x"}, "INVALID_FIELD", "debit_participant"),
        ({"credit_participant": ""}, "INVALID_FIELD", "credit_participant"),
        ({"amount": thb(0)}, "INVALID_AMOUNT", "amount.amount_satang"),
        ({"amount": thb(-1)}, "INVALID_AMOUNT", "amount.amount_satang"),
    ],
)
async def test_malformed_requests_are_invalid_and_record_nothing(
    settlement: Stub, request_fields: dict[str, object], reason: str, field: str
) -> None:
    payer, payee = _bank(), _bank()
    request = _request(payer, payee, 100)
    for name, value in request_fields.items():
        if isinstance(value, str):
            setattr(request, name, value)
        else:
            getattr(request, name).CopyFrom(value)
    code, got_reason, metadata = await _error(settlement.RecordTransfer(request))
    assert (code, got_reason, metadata["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        reason,
        field,
    )
    assert await _position(settlement, payer) == (0, 0)


async def test_a_position_that_would_overflow_is_refused_and_nothing_moves(
    settlement: Stub,
) -> None:
    """The request is well formed (the same one is recorded once the position has moved
    back), so the refusal is the stored position's: FAILED_PRECONDITION, not
    INVALID_ARGUMENT, naming the participant, and nothing of it is written."""
    payer, payee, other = _bank(), _bank(), _bank()
    await settlement.RecordTransfer(_request(payer, payee, 2**63 - 1))
    refused = _request(payer, payee, 1)
    code, reason, metadata = await _error(settlement.RecordTransfer(refused))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "POSITION_LIMIT_EXCEEDED")
    assert metadata["participant"] == payee
    # The payee stands at the top of its OPEN cycle's position and of its lifetime one; the
    # cycle's is moved first, so it is the one named.
    assert metadata["resource"].startswith("settlementCycles/")
    assert metadata["resource"].endswith(f"/positions/{payee.removeprefix('participants/')}")
    assert await _position(settlement, payee) == (2**63 - 1, 1)
    assert await _position(settlement, payer) == (-(2**63 - 1), 1)
    code, reason, _ = await _error(
        settlement.GetObligation(
            service_pb2.GetObligationRequest(
                name=f"settlementCycles/-/obligations/{refused.transfer_id}"
            )
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBLIGATION_NOT_FOUND")

    await settlement.RecordTransfer(_request(payee, other, 1))
    recorded = await settlement.RecordTransfer(refused)
    assert recorded.obligation.transfer_id == refused.transfer_id
    assert await _position(settlement, payee) == (2**63 - 1, 3)
    assert await _position(settlement, payer) == (-(2**63), 2)


async def test_the_payer_side_overflows_below_the_lowest_position(settlement: Stub) -> None:
    payer, payee = _bank(), _bank()
    await settlement.RecordTransfer(_request(payer, payee, 2**63 - 1))
    await settlement.RecordTransfer(_request(payer, _bank(), 1))  # the payer at -2^63
    code, reason, metadata = await _error(settlement.RecordTransfer(_request(payer, _bank(), 1)))
    assert (code, reason, metadata["participant"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "POSITION_LIMIT_EXCEEDED",
        payer,
    )
    assert await _position(settlement, payer) == (-(2**63), 2)


@pytest.mark.parametrize(
    "name", ["participants/bank-a", "bank-a/position", "", "participants/A/position"]
)
async def test_a_malformed_position_name_is_invalid(settlement: Stub, name: str) -> None:
    code, reason, metadata = await _error(
        settlement.GetPosition(service_pb2.GetPositionRequest(name=name))
    )
    assert (code, reason, metadata["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "name",
    )
