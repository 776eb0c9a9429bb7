"""Small builders the ledger's API tests share."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_ledger.audit.__main__ import verify
from openloop_ledger.audit.sources import DatabaseSource
from openloop_ledger.config import DEVELOPMENT_LEAF_KEY, DEVELOPMENT_LOG_VERIFIER_KEY

if TYPE_CHECKING:
    Stub = service_pb2_grpc.LedgerServiceAsyncStub

T = resources_pb2.CreateTransferResult
WALLET = resources_pb2.AccountFlags(debits_must_not_exceed_credits=True)


def new_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


async def open_account(
    ledger: Stub, label: str, *, flags: resources_pb2.AccountFlags | None = None
) -> str:
    account_id = new_id(label)
    account = resources_pb2.Account(
        id=account_id, ledger=764, code=1, flags=flags, participant="participants/bank-a"
    )
    response = await ledger.CreateAccounts(service_pb2.CreateAccountsRequest(accounts=[account]))
    assert list(response.results) == [resources_pb2.CREATE_ACCOUNT_RESULT_OK]
    return account_id


def transfer(
    debit: str,
    credit: str,
    amount: int,
    *,
    transfer_id: str | None = None,
    flags: resources_pb2.TransferFlags | None = None,
    **fields: object,
) -> resources_pb2.Transfer:
    message = resources_pb2.Transfer(
        id=new_id("t") if transfer_id is None else transfer_id,
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        ledger=764,
        code=1,
        flags=flags,
    )
    for name, value in fields.items():
        setattr(message, name, value)
    return message


async def submit(ledger: Stub, *transfers: resources_pb2.Transfer) -> list[int]:
    response = await ledger.CreateTransfers(service_pb2.CreateTransfersRequest(transfers=transfers))
    return list(response.results)


async def balances(ledger: Stub, account_id: str) -> tuple[int, int, int, int]:
    """(debits_pending, debits_posted, credits_pending, credits_posted)."""
    response = await ledger.LookupAccounts(service_pb2.LookupAccountsRequest(ids=[account_id]))
    [a] = response.accounts
    return a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted


async def checkpoint_covering(
    ledger: Stub, size: int, *, seconds: float = 4.0
) -> resources_pb2.Checkpoint:
    """The latest checkpoint, once the sealer has covered at least ``size`` journal entries."""
    for _ in range(int(seconds / 0.02)):
        response = await ledger.GetCheckpoint(service_pb2.GetCheckpointRequest())
        if response.checkpoint.tree_size >= size:
            return response.checkpoint
        await asyncio.sleep(0.02)
    raise AssertionError(f"no checkpoint reached size {size} within {seconds:g} s")


async def commit_transfers(ledger: Stub, count: int) -> list[str]:
    """Commit ``count`` transfers between two new accounts; their ids."""
    a, b = await open_account(ledger, "a"), await open_account(ledger, "b")
    moves = [transfer(a, b, n + 1) for n in range(count)]
    assert await submit(ledger, *moves) == [T.CREATE_TRANSFER_RESULT_OK] * count
    return [move.id for move in moves]


async def journal_size_with(ledger: Stub, transfer_id: str) -> int:
    """The journal's size once ``transfer_id`` is in it."""
    looked = await ledger.LookupTransfers(service_pb2.LookupTransfersRequest(ids=[transfer_id]))
    return looked.transfers[0].position + 1


async def assert_log_verifies(database_url: str) -> int:
    """The auditor's verifier, with the development keys, finds nothing wrong in the ledger
    database (leaves, tiles, checkpoints, balances); the leaves it checked."""
    source = await DatabaseSource.connect(database_url)
    try:
        report = await verify(source, DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY)
    finally:
        await source.close()
    assert report.ok, report.findings
    return report.leaves


async def sealed_through(
    ledger: Stub, transfer_id: str, *, seconds: float = 15.0
) -> resources_pb2.Checkpoint:
    """The latest checkpoint once one covers ``transfer_id``: for tests whose sealer is a
    process of its own, given time for a CI machine whose two cores are busy (returned as
    soon as a checkpoint covers it)."""
    return await checkpoint_covering(
        ledger, await journal_size_with(ledger, transfer_id), seconds=seconds
    )
