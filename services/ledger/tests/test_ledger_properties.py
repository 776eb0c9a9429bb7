"""Random batches through the real ledger keep double entry and every limit intact."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc

if TYPE_CHECKING:
    Stub = service_pb2_grpc.LedgerServiceAsyncStub

T = resources_pb2.CreateTransferResult
MAX = 2**63 - 1
_examples = itertools.count()

# (label, flags): an unlimited issuer, two wallets, a capped account, a plain one.
ACCOUNTS = [
    ("issuer", resources_pb2.AccountFlags()),
    ("wallet0", resources_pb2.AccountFlags(debits_must_not_exceed_credits=True)),
    ("wallet1", resources_pb2.AccountFlags(debits_must_not_exceed_credits=True)),
    ("capped", resources_pb2.AccountFlags(credits_must_not_exceed_debits=True)),
    ("shop", resources_pb2.AccountFlags()),
]


@dataclass(frozen=True)
class Move:
    id: int
    """Index into a small pool, so ids repeat within and across batches."""
    debit: int
    """Index into ACCOUNTS; one past the end names an account that does not exist."""
    credit: int
    amount: int


moves = st.builds(
    Move,
    id=st.integers(0, 11),
    debit=st.integers(0, len(ACCOUNTS)),
    credit=st.integers(0, len(ACCOUNTS)),
    amount=st.one_of(st.integers(1, 5_000), st.sampled_from([0, MAX, MAX + 1])),
)
batches = st.lists(st.lists(moves, min_size=1, max_size=15), min_size=1, max_size=4)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(ledger_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(ledger_database)
    yield engine
    await engine.dispose()


async def _totals(ledger: Stub, ids: list[str]) -> dict[str, tuple[int, int]]:
    response = await ledger.LookupAccounts(service_pb2.LookupAccountsRequest(ids=ids))
    return {a.id: (a.debits_posted, a.credits_posted) for a in response.accounts}


@settings(max_examples=25, deadline=None)
@given(batches=batches)
async def test_random_batches_keep_the_books_balanced(
    ledger: Stub, database: AsyncEngine, batches: list[list[Move]]
) -> None:
    example = next(_examples)
    ids = [f"p{example}-{label}" for label, _ in ACCOUNTS]
    names = [*ids, f"p{example}-missing"]
    created = await ledger.CreateAccounts(
        service_pb2.CreateAccountsRequest(
            accounts=[
                resources_pb2.Account(
                    id=account_id,
                    ledger=764,
                    code=1,
                    flags=flags,
                    participant="participants/bank-a",
                )
                for account_id, (_, flags) in zip(ids, ACCOUNTS, strict=True)
            ]
        )
    )
    assert set(created.results) == {resources_pb2.CREATE_ACCOUNT_RESULT_OK}

    expected = {account_id: [0, 0] for account_id in ids}
    accepted: list[resources_pb2.Transfer] = []
    for batch in batches:
        transfers = [
            resources_pb2.Transfer(
                id=f"p{example}-t{move.id}",
                debit_account_id=names[move.debit],
                credit_account_id=names[move.credit],
                amount=move.amount,
                ledger=764,
                code=1,
            )
            for move in batch
        ]
        response = await ledger.CreateTransfers(
            service_pb2.CreateTransfersRequest(transfers=transfers)
        )
        assert len(response.results) == len(transfers)
        for transfer, result in zip(transfers, response.results, strict=True):
            if result == T.CREATE_TRANSFER_RESULT_OK:
                expected[transfer.debit_account_id][0] += transfer.amount
                expected[transfer.credit_account_id][1] += transfer.amount
                accepted.append(transfer)

    totals = await _totals(ledger, ids)
    # Exactly the accepted transfers moved money.
    assert totals == {account_id: tuple(moved) for account_id, moved in expected.items()}
    # Double entry: what left some accounts arrived in others.
    assert sum(d for d, _ in totals.values()) == sum(c for _, c in totals.values())
    # No limited account went past its limit.
    for account_id, (_, flags) in zip(ids, ACCOUNTS, strict=True):
        debits, credits = totals[account_id]
        if flags.debits_must_not_exceed_credits:
            assert debits <= credits
        if flags.credits_must_not_exceed_debits:
            assert credits <= debits

    # Replaying what was accepted moves nothing more.
    if accepted:
        replay = await ledger.CreateTransfers(
            service_pb2.CreateTransfersRequest(transfers=accepted)
        )
        assert set(replay.results) == {T.CREATE_TRANSFER_RESULT_EXISTS}
        assert await _totals(ledger, ids) == totals

    # And across the whole database, every transfer balances.
    async with database.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT sum(debits_posted) AS d, sum(credits_posted) AS c FROM accounts")
            )
        ).one()
    assert row.d == row.c
