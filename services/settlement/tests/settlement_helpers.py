"""Calls the settlement tests share: the operator key the test servers trust, recording,
closing, reading every page of a list."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, cast

import grpc
import pytest

from openloop.settlement.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_runtime.errors import error_info_of
from openloop_runtime.money import thb
from openloop_runtime.operator_calls import OperatorToken, operator_channel
from openloop_runtime.operators import OperatorKey
from openloop_settlement import access

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub

_OPERATOR = OperatorKey.generate("settlement-ops-test-1")
OPERATOR_KID = _OPERATOR.kid
OPERATOR_PRIVATE_PEM = _OPERATOR.private_pem
OPERATOR_KEYS = _OPERATOR.trusted()
"""The operator key the test servers trust (``operator_keys``); tests sign tokens with it."""


def operator_token(
    role: str = access.Role.OPERATOR,
    *,
    subject: str = "alice",
    audience: str = access.AUDIENCE,
    private_key_pem: bytes = OPERATOR_PRIVATE_PEM,
    kid: str = OPERATOR_KID,
) -> OperatorToken:
    return OperatorToken(private_key_pem, kid=kid, subject=subject, role=role, audience=audience)


def operator_stub(
    target: str, role: str = access.Role.OPERATOR, subject: str = "alice"
) -> tuple[grpc.aio.Channel, Stub]:
    """A channel to ``target`` whose every call carries a settlement operator token (as the
    admin CLI sends), and its stub: the tests' calls need no token of their own. The internal
    methods ignore the token."""
    channel = operator_channel(target, operator_token(role, subject=subject))
    # The generated stub is the async flavour on an aio channel; mypy cannot see the channel.
    return channel, cast("Stub", service_pb2_grpc.SettlementServiceStub(channel))


def new_bank(prefix: str = "bank") -> str:
    return f"participants/{prefix}-{uuid.uuid4().hex[:10]}"


async def record(
    settlement: Stub, debit: str, credit: str, amount: int, transfer_id: str | None = None
) -> resources_pb2.Obligation:
    reply = await settlement.RecordTransfer(
        service_pb2.RecordTransferRequest(
            transfer_id=transfer_id or f"t-{uuid.uuid4().hex}",
            debit_participant=debit,
            credit_participant=credit,
            amount=thb(amount),
        )
    )
    return reply.obligation


async def open_cycle(settlement: Stub) -> str:
    reply = await settlement.ListSettlementCycles(
        service_pb2.ListSettlementCyclesRequest(page_size=1)
    )
    assert reply.settlement_cycles[0].state == resources_pb2.SettlementCycle.STATE_OPEN
    return reply.settlement_cycles[0].name


async def close_open_cycle(settlement: Stub) -> service_pb2.CloseSettlementCycleResponse:
    return await settlement.CloseSettlementCycle(
        service_pb2.CloseSettlementCycleRequest(
            name=await open_cycle(settlement), request_id=uuid.uuid4().hex
        )
    )


async def cycle_positions(
    settlement: Stub, cycle: str, page_size: int = 3
) -> dict[str, tuple[int, int]]:
    report: dict[str, tuple[int, int]] = {}
    token = ""
    while True:
        page = await settlement.ListCyclePositions(
            service_pb2.ListCyclePositionsRequest(
                parent=cycle, page_size=page_size, page_token=token
            )
        )
        for p in page.cycle_positions:
            assert p.participant not in report, "listed twice"
            report[p.participant] = (p.net_position.amount_satang, p.transfer_count)
        token = page.next_page_token
        if not token:
            return report


async def obligations(
    settlement: Stub, parent: str, participant: str = "", page_size: int = 7
) -> list[resources_pb2.Obligation]:
    found: list[resources_pb2.Obligation] = []
    token = ""
    while True:
        page = await settlement.ListObligations(
            service_pb2.ListObligationsRequest(
                parent=parent, participant=participant, page_size=page_size, page_token=token
            )
        )
        found.extend(page.obligations)
        token = page.next_page_token
        if not token:
            return found


async def error_of(call: object) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    info = error_info_of(caught.value)
    assert info is not None, caught.value
    assert info.domain == "settlement.openloop.dev"
    return caught.value.code(), info.reason, dict(info.metadata)
