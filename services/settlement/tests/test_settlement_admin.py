"""The operator's command line closes the OPEN cycle and prints who pays whom."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from openloop.settlement.v1 import service_pb2_grpc
from services.settlement.tests.settlement_helpers import open_cycle, record

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub


async def _admin(target: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "openloop_settlement.admin", "--target", target, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_close_prints_the_net_settlement_and_a_retry_closes_nothing_more(
    settlement: Stub, settlement_target: str
) -> None:
    await record(settlement, "participants/cli-a", "participants/cli-b", 123_456)
    await record(settlement, "participants/cli-c", "participants/cli-b", 100)
    cycle = await open_cycle(settlement)
    code, out, _ = await _admin(settlement_target, "close", "--request-id", "cli-close-1")
    assert code == 0
    assert f"{cycle}: CLOSED" in out
    assert "participants/cli-a pays 1,234.56 THB" in out
    assert "participants/cli-b receives 1,235.56 THB" in out
    assert "participants/cli-a -> participants/cli-b: 1,234.56 THB" in out
    assert "sum of positions: 0.00 THB" in out
    again = await _admin(
        settlement_target, "close", "--request-id", "cli-close-1", "--cycle", cycle
    )
    assert again[0] == 0
    assert again[1] == out
    code, _, err = await _admin(settlement_target, "settle", cycle, "--request-id", "cli-settle")
    assert code == 0
    code, _, err = await _admin(settlement_target, "settle", cycle, "--request-id", "other")
    assert code == 1
    assert "SETTLEMENT_CYCLE_STATE_CONFLICT" in err
