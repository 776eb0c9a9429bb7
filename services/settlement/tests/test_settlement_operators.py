"""Who may call settlement: an operator with a token for settlement, to close and settle
cycles and to read the reports; anyone the network lets through (the gateway, identity) for
recording transfers and reading one position."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_runtime.operators import mint
from openloop_settlement import access
from services.settlement.tests.settlement_helpers import (
    OPERATOR_KID,
    OPERATOR_PRIVATE_PEM,
    error_of,
    new_bank,
    open_cycle,
    operator_token,
    record,
)

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub

SERVICE = service_pb2.DESCRIPTOR.services_by_name["SettlementService"]
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
CHANGES = sorted(m for m, roles in access.OPERATOR_METHODS.items() if roles == access.OPERATORS)
READS = sorted(m for m, roles in access.OPERATOR_METHODS.items() if roles == access.READERS)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bare(settlement_target: str) -> AsyncIterator[Stub]:
    """A stub that sends whatever metadata each call is given, and no token of its own."""
    async with grpc.aio.insecure_channel(settlement_target) as channel:
        yield cast("Stub", service_pb2_grpc.SettlementServiceStub(channel))


def _metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


async def _call(stub: Stub, method: str, metadata: list[tuple[str, str]] | None = None) -> Any:
    """``method`` with an empty request: enough to see who the server lets in."""
    descriptor = SERVICE.methods_by_name[method]
    request = getattr(service_pb2, descriptor.input_type.name)()
    return await getattr(stub, method)(request, metadata=metadata)


def test_every_rpc_is_either_internal_or_an_operators() -> None:
    methods = set(SERVICE.methods_by_name)
    operator = set(access.OPERATOR_METHODS)
    assert not access.INTERNAL & operator
    assert methods == access.INTERNAL | operator
    assert {"RecordTransfer", "GetPosition"} == access.INTERNAL
    assert CHANGES == ["CloseSettlementCycle", "SettleSettlementCycle"]
    assert set(READS) == operator - set(CHANGES)


@pytest.mark.parametrize("method", sorted(access.OPERATOR_METHODS))
async def test_an_operator_method_without_a_token_is_unauthenticated(
    bare: Stub, method: str
) -> None:
    code, reason, metadata = await error_of(_call(bare, method))
    assert (code, reason, metadata["token_reason"]) == (
        UNAUTHENTICATED,
        "OPERATOR_NOT_AUTHENTICATED",
        "TOKEN_MISSING",
    )


@pytest.mark.parametrize("method", sorted(access.OPERATOR_METHODS))
async def test_an_identity_token_opens_nothing_in_settlement(bare: Stub, method: str) -> None:
    """Signed by a key settlement trusts, but for identity: wrong audience."""
    identity = mint(
        OPERATOR_PRIVATE_PEM,
        kid=OPERATOR_KID,
        subject="alice",
        role="identity-operator",
        audience="openloop-identity",
    )
    code, reason, metadata = await error_of(_call(bare, method, _metadata(identity)))
    assert (code, reason, metadata["token_reason"]) == (
        UNAUTHENTICATED,
        "OPERATOR_NOT_AUTHENTICATED",
        "TOKEN_WRONG_AUDIENCE",
    )


@pytest.mark.parametrize("method", CHANGES)
async def test_an_auditor_may_not_close_or_settle(bare: Stub, method: str) -> None:
    auditor = operator_token(access.Role.AUDITOR)()
    code, reason, metadata = await error_of(_call(bare, method, _metadata(auditor)))
    assert (code, reason, metadata["role"]) == (
        DENIED,
        "OPERATOR_NOT_AUTHORISED",
        "settlement-auditor",
    )


@pytest.mark.parametrize("method", READS)
async def test_an_auditor_may_read_every_report(bare: Stub, method: str) -> None:
    """An empty request is refused for what it lacks (or answered), never for the role."""
    auditor = operator_token(access.Role.AUDITOR, subject="treasury")()
    code = grpc.StatusCode.OK
    try:
        await _call(bare, method, _metadata(auditor))
    except grpc.aio.AioRpcError as refused:
        code = refused.code()
    assert code not in (UNAUTHENTICATED, DENIED)


async def test_an_auditor_reads_a_closed_cycles_settlement(settlement: Stub, bare: Stub) -> None:
    payer, payee = new_bank(), new_bank()
    await record(settlement, payer, payee, 5_000)
    cycle = await open_cycle(settlement)
    await settlement.CloseSettlementCycle(
        service_pb2.CloseSettlementCycleRequest(name=cycle, request_id=uuid.uuid4().hex)
    )
    auditor = _metadata(operator_token(access.Role.AUDITOR, subject="treasury")())

    report = await bare.ListCyclePositions(
        service_pb2.ListCyclePositionsRequest(parent=cycle), metadata=auditor
    )
    obligations = await bare.ListObligations(
        service_pb2.ListObligationsRequest(parent=cycle, participant=payer), metadata=auditor
    )

    net = {p.participant: p.net_position.amount_satang for p in report.cycle_positions}
    assert (net[payer], net[payee]) == (-5_000, 5_000)
    assert [o.amount.amount_satang for o in obligations.obligations] == [5_000]


async def test_tokens_that_prove_nothing_are_refused_with_their_reason(bare: Stub) -> None:
    stranger = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    forged = operator_token(private_key_pem=stranger)()
    unknown_key = operator_token(kid="not-trusted")()
    expired = mint(
        OPERATOR_PRIVATE_PEM,
        kid=OPERATOR_KID,
        subject="alice",
        role=access.Role.OPERATOR,
        audience=access.AUDIENCE,
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    for token, token_reason in (
        (forged, "TOKEN_BAD_SIGNATURE"),
        (unknown_key, "TOKEN_UNKNOWN_KEY"),
        (expired, "TOKEN_EXPIRED"),
        ("not-a-token", "TOKEN_MALFORMED"),
    ):
        code, reason, metadata = await error_of(
            _call(bare, "CloseSettlementCycle", _metadata(token))
        )
        assert (code, reason, metadata["token_reason"]) == (
            UNAUTHENTICATED,
            "OPERATOR_NOT_AUTHENTICATED",
            token_reason,
        )
    # A role of another service, even in a token for settlement, may not use settlement.
    other_role = operator_token("identity-operator")()
    code, reason, _ = await error_of(_call(bare, "ListSettlementCycles", _metadata(other_role)))
    assert (code, reason) == (DENIED, "OPERATOR_NOT_AUTHORISED")


async def test_without_a_token_no_cycle_closes_or_settles(settlement: Stub, bare: Stub) -> None:
    """Whoever merely reaches settlement's port names the OPEN cycle: it stays OPEN."""
    cycle = await open_cycle(settlement)
    for call in (
        bare.CloseSettlementCycle(
            service_pb2.CloseSettlementCycleRequest(name=cycle, request_id="rogue-close")
        ),
        bare.SettleSettlementCycle(
            service_pb2.SettleSettlementCycleRequest(name=cycle, request_id="rogue-settle")
        ),
    ):
        code, reason, _ = await error_of(call)
        assert (code, reason) == (UNAUTHENTICATED, "OPERATOR_NOT_AUTHENTICATED")
    assert await open_cycle(settlement) == cycle


async def test_the_other_services_methods_need_no_operator_token(bare: Stub) -> None:
    payer, payee = new_bank(), new_bank()
    recorded = await record(bare, payer, payee, 700)
    assert recorded.amount.amount_satang == 700
    position = await bare.GetPosition(service_pb2.GetPositionRequest(name=f"{payee}/position"))
    assert position.position.net_position.amount_satang == 700


@pytest.mark.parametrize("method", sorted(access.INTERNAL))
async def test_an_internal_method_never_asks_for_a_token(bare: Stub, method: str) -> None:
    """An empty request is refused for what it lacks, never for a missing token."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(bare, method)
    assert refused.value.code() not in (UNAUTHENTICATED, DENIED)


async def test_closes_and_settles_name_the_operator_in_the_log(
    settlement: Stub, bare: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    cycle = await open_cycle(settlement)
    officer = _metadata(operator_token(subject="ops-somchai")())

    with caplog.at_level(logging.INFO, logger="openloop_settlement.servicer"):
        await bare.CloseSettlementCycle(
            service_pb2.CloseSettlementCycleRequest(name=cycle, request_id="log-close"),
            metadata=officer,
        )
        await bare.SettleSettlementCycle(
            service_pb2.SettleSettlementCycleRequest(name=cycle, request_id="log-settle"),
            metadata=officer,
        )

    trail = {
        record.getMessage(): record.__dict__
        for record in caplog.records
        if record.getMessage() in ("settlement cycle closed", "settlement cycle settled")
    }
    assert set(trail) == {"settlement cycle closed", "settlement cycle settled"}
    for fields in trail.values():
        assert fields["operator"] == "ops-somchai"
        assert fields["cycle"] == cycle
    assert trail["settlement cycle closed"]["request_id"] == "log-close"
    assert trail["settlement cycle settled"]["request_id"] == "log-settle"


async def test_a_cycle_records_who_closed_it_and_who_settled_it(
    settlement: Stub, bare: Stub
) -> None:
    cycle = await open_cycle(settlement)
    closer = _metadata(operator_token(subject="ops-somchai")())
    settler = _metadata(operator_token(subject="ops-malee")())
    auditor = _metadata(operator_token(access.Role.AUDITOR, subject="audit-niran")())
    close = service_pb2.CloseSettlementCycleRequest(name=cycle, request_id=uuid.uuid4().hex)
    settle = service_pb2.SettleSettlementCycleRequest(name=cycle, request_id=uuid.uuid4().hex)

    closed = (await bare.CloseSettlementCycle(close, metadata=closer)).settlement_cycle
    assert (closed.closed_by, closed.settled_by) == ("operator:ops-somchai", "")
    # A retry by someone else is the first close: it leaves the first closer recorded.
    retried = (await bare.CloseSettlementCycle(close, metadata=settler)).settlement_cycle
    assert retried.closed_by == "operator:ops-somchai"
    # A refused settle (an auditor may not) records nobody.
    code, _, _ = await error_of(bare.SettleSettlementCycle(settle, metadata=auditor))
    assert code == DENIED
    settled = (await bare.SettleSettlementCycle(settle, metadata=settler)).settlement_cycle
    assert (settled.closed_by, settled.settled_by) == ("operator:ops-somchai", "operator:ops-malee")
    await bare.SettleSettlementCycle(settle, metadata=closer)  # a retry changes nothing

    read = await bare.GetSettlementCycle(
        service_pb2.GetSettlementCycleRequest(name=cycle), metadata=auditor
    )
    assert (read.settlement_cycle.closed_by, read.settlement_cycle.settled_by) == (
        "operator:ops-somchai",
        "operator:ops-malee",
    )
    following = await bare.GetSettlementCycle(
        service_pb2.GetSettlementCycleRequest(name=await open_cycle(settlement)), metadata=auditor
    )
    assert following.settlement_cycle.closed_by == ""
