"""The operator's command line closes the OPEN cycle and prints who pays whom, signing every
call with the operator's key."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import create_async_engine

from openloop.settlement.v1 import service_pb2, service_pb2_grpc
from openloop_settlement.cutoff_scheduler import ACTOR
from openloop_settlement.cutoffs import request_id_for
from openloop_settlement.cycles import CycleStore
from services.settlement.tests.settlement_helpers import (
    OPERATOR_KID,
    OPERATOR_PRIVATE_PEM,
    open_cycle,
    record,
)

if TYPE_CHECKING:
    Stub = service_pb2_grpc.SettlementServiceAsyncStub


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "operator.pem"
    path.write_bytes(OPERATOR_PRIVATE_PEM)
    return path


async def _admin(
    target: str, key_file: Path, *args: str, kid: str = OPERATOR_KID, role: str = ""
) -> tuple[int, str, str]:
    signing = ["--key-file", str(key_file), "--kid", kid, "--operator", "alice"]
    if role:
        signing += ["--role", role]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "openloop_settlement.admin", "--target", target, *signing, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_close_prints_the_net_settlement_and_a_retry_closes_nothing_more(
    settlement: Stub, settlement_target: str, key_file: Path
) -> None:
    await record(settlement, "participants/cli-a", "participants/cli-b", 123_456)
    await record(settlement, "participants/cli-c", "participants/cli-b", 100)
    cycle = await open_cycle(settlement)
    code, out, _ = await _admin(settlement_target, key_file, "close", "--request-id", "cli-close-1")
    assert code == 0
    assert f"{cycle}: CLOSED" in out
    assert "participants/cli-a pays 1,234.56 THB" in out
    assert "participants/cli-b receives 1,235.56 THB" in out
    assert "participants/cli-a -> participants/cli-b: 1,234.56 THB" in out
    assert "sum of positions: 0.00 THB" in out
    again = await _admin(
        settlement_target, key_file, "close", "--request-id", "cli-close-1", "--cycle", cycle
    )
    assert again[0] == 0
    assert again[1] == out
    code, _, err = await _admin(
        settlement_target, key_file, "settle", cycle, "--request-id", "cli-settle"
    )
    assert code == 0
    code, _, err = await _admin(
        settlement_target, key_file, "settle", cycle, "--request-id", "other"
    )
    assert code == 1
    assert "SETTLEMENT_CYCLE_STATE_CONFLICT" in err


async def test_a_lost_close_retried_with_its_request_id_alone_answers_that_close(
    settlement: Stub, settlement_target: str, key_file: Path
) -> None:
    """As the CLI's help says: run the close again with ``--request-id``. The cycle OPEN by
    then is the next one; the retry answers the cycle the key closed and closes no other."""
    await record(settlement, "participants/lost-a", "participants/lost-b", 10_000)
    cycle = await open_cycle(settlement)
    first = await _admin(settlement_target, key_file, "close", "--request-id", "lost-answer")
    assert first[0] == 0
    next_cycle = await open_cycle(settlement)
    assert next_cycle != cycle
    retry = await _admin(settlement_target, key_file, "close", "--request-id", "lost-answer")
    assert retry[0] == 0, retry[2]
    assert retry[1] == first[1]
    assert await open_cycle(settlement) == next_cycle  # nothing else closed


async def test_an_auditor_reads_the_reports_but_closes_nothing(
    settlement: Stub, settlement_target: str, key_file: Path
) -> None:
    cycle = await open_cycle(settlement)
    auditor = "settlement-auditor"
    code, out, _ = await _admin(settlement_target, key_file, "cycles", role=auditor)
    assert (code, out.splitlines()[0]) == (0, f"{cycle}: OPEN")
    code, out, _ = await _admin(settlement_target, key_file, "report", cycle, role=auditor)
    assert code == 0
    assert "this is not a settlement report" in out
    code, _, err = await _admin(settlement_target, key_file, "close", role=auditor)
    assert code == 1
    assert "OPERATOR_NOT_AUTHORISED" in err
    assert await open_cycle(settlement) == cycle


async def test_a_key_settlement_does_not_trust_is_refused(
    settlement_target: str, key_file: Path, tmp_path: Path
) -> None:
    code, _, err = await _admin(settlement_target, key_file, "cycles", kid="not-trusted")
    assert code == 1
    assert "OPERATOR_NOT_AUTHENTICATED" in err
    assert "TOKEN_UNKNOWN_KEY" in err
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    code, _, err = await _admin(settlement_target, stranger, "cycles")
    assert code == 1
    assert "TOKEN_BAD_SIGNATURE" in err


async def test_a_key_file_that_cannot_sign_stops_before_any_call(
    settlement_target: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pem"
    code, _, err = await _admin(settlement_target, missing, "cycles")
    assert code == 2
    assert "cannot sign" in err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    code, _, err = await _admin(settlement_target, garbage, "cycles")
    assert code == 2
    assert "cannot sign" in err


async def test_cycles_lists_who_closed_each_cycle_an_operator_or_the_scheduler(
    settlement: Stub, settlement_target: str, settlement_database: str, key_file: Path
) -> None:
    by_operator = await open_cycle(settlement)
    code, _, err = await _admin(settlement_target, key_file, "close", "--request-id", "who-1")
    assert code == 0, err
    by_scheduler = await open_cycle(settlement)
    cutoff = datetime(2098, 4, 1, 16, 0, tzinfo=UTC)  # 23:00 in Bangkok
    engine = create_async_engine(settlement_database)
    try:
        await CycleStore(engine).close(
            int(by_scheduler.split("/")[1]), request_id_for(cutoff), ACTOR, cutoff_time=cutoff
        )
    finally:
        await engine.dispose()
    code, out, err = await _admin(settlement_target, key_file, "cycles", role="settlement-auditor")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{await open_cycle(settlement)}: OPEN"
    assert lines[1] == (
        f"{by_scheduler}: CLOSED, closed by scheduler:cutoff for the cut-off of 2098-04-01 "
        "16:00 UTC"
    )
    assert lines[2] == f"{by_operator}: CLOSED, closed by operator:alice"
    operators = await settlement.GetSettlementCycle(
        service_pb2.GetSettlementCycleRequest(name=by_operator)
    )
    assert not operators.settlement_cycle.HasField("cutoff_time")
