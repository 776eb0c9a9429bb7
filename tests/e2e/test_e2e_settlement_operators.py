"""On the running mesh, settlement closes and settles cycles and shows its reports only to an
operator with a token for settlement, as the operator's command line sends it; what the
gateway and identity call answers without one."""

from __future__ import annotations

import asyncio
import sys

import grpc
import pytest

from openloop.settlement.v1 import service_pb2 as settlement_pb2
from openloop.settlement.v1 import service_pb2_grpc as settlement_grpc
from openloop_dev.operators import operator_key_file, operator_token
from tests.e2e.journeys import metadata_of, reason_of

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def _admin(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "openloop_settlement.admin", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_settlement_closes_and_reports_only_for_its_operators(platform):
    layout = platform.mesh.layout
    target = layout.target("settlement")
    cycles = (
        await platform.settlement.ListSettlementCycles(
            settlement_pb2.ListSettlementCyclesRequest(page_size=1)
        )
    ).settlement_cycles
    open_cycle = cycles[0].name
    rules_token = [("authorization", f"Bearer {operator_token(layout.workdir)}")]
    async with grpc.aio.insecure_channel(target) as channel:
        stub = settlement_grpc.SettlementServiceStub(channel)
        close = settlement_pb2.CloseSettlementCycleRequest(name=open_cycle, request_id="rogue")
        for call in (
            stub.CloseSettlementCycle(close),
            stub.ListSettlementCycles(settlement_pb2.ListSettlementCyclesRequest()),
            # The dev mesh's rules operator: a real token, but signed by the rules
            # service's dev key, which settlement does not trust.
            stub.CloseSettlementCycle(close, metadata=rules_token),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert reason_of(refused.value) == "OPERATOR_NOT_AUTHENTICATED"
        assert metadata_of(refused.value)["token_reason"] == "TOKEN_BAD_SIGNATURE"
        # What identity asks before a participant closes still answers without a token.
        position = await stub.GetPosition(
            settlement_pb2.GetPositionRequest(name="participants/bank-a/position")
        )
        assert position.position.name == "participants/bank-a/position"

    key = str(operator_key_file(layout.workdir, "settlement"))
    signed = ["--target", target, "--key-file", key, "--kid", "dev-operator", "--operator", "e2e"]
    code, out, err = await _admin(*signed, "cycles")
    assert code == 0, err
    assert out.splitlines()[0] == f"{open_cycle}: OPEN"  # the rogue close closed nothing
    code, _, err = await _admin(*signed, "--role", "settlement-auditor", "close")
    assert code == 1
    assert "OPERATOR_NOT_AUTHORISED" in err
