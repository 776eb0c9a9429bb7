"""A batch's writes (:func:`openloop_ledger.pg.write_batch`): in one statement when the
batch is small, by COPY when it is large, and the same rows either way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio

from openloop_ledger import pg
from openloop_ledger.model import Transfer, TransferFlags, TransferSpec

SIZES = [1, 7, pg.SMALL_BATCH, pg.SMALL_BATCH + 1, 300]
"""Both sides of the switch from one statement to COPY."""


@pytest_asyncio.fixture(loop_scope="session")
async def conn(ledger_database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(ledger_database.replace("postgresql+asyncpg", "postgresql"))
    try:
        yield connection
    finally:
        await connection.close()


async def _open(conn: asyncpg.Connection, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}-{n}" for n in range(count)]
    await conn.execute(
        "INSERT INTO accounts (id, ledger, code, debits_must_not_exceed_credits,"
        " credits_must_not_exceed_debits, user_data, participant_id)"
        " SELECT unnest($1::text[]), 764, 1, false, false, '', 'bank-a'",
        ids,
    )
    return ids


def _transfers(prefix: str, count: int, accounts: list[str], at: datetime) -> list[Transfer]:
    """Transfers that use every column: a pending one, a post of it, user data, codes."""
    transfers = []
    for n in range(count):
        pending, post = n % 5 == 1, n % 5 == 2 and n > 1
        spec = TransferSpec(
            id=f"{prefix}-{n}",
            debit_account_id=accounts[n % len(accounts)],
            credit_account_id=accounts[(n + 1) % len(accounts)],
            amount=n * 1_000 + 1,
            ledger=764,
            code=1 + n % 3,
            user_data=f"order {n}" if n % 2 else "",
            flags=TransferFlags(pending=pending, post_pending_transfer=post),
            pending_id=f"{prefix}-{n - 1}" if post else "",
            timeout=60 if pending else 0,
        )
        transfers.append(Transfer(spec, at, -1))
    return transfers


@pytest.mark.parametrize("count", SIZES)
async def test_a_batch_writes_its_transfers_the_journal_and_the_totals(
    conn: asyncpg.Connection, count: int
) -> None:
    prefix = f"rows{count}"
    accounts = await _open(conn, prefix, 3)
    at = datetime.now(UTC)
    transfers = _transfers(prefix, count, accounts, at)
    totals = [(a, n, 10 * n, 100 * n, 1_000 * n, n == 2) for n, a in enumerate(accounts)]
    async with conn.transaction():
        size, _, _ = await pg.lock_journal(conn)
        await pg.write_batch(conn, transfers, size, (size + count, 4242, at), totals)

    rows = await pg.journal_rows(conn, size, size + count + 1)
    assert [pg.transfer_of(row) for row in rows] == [
        Transfer(t.spec, at, size + n) for n, t in enumerate(transfers)
    ]
    assert tuple(await conn.fetchrow("SELECT size, batch_token, last_time FROM journal")) == (
        size + count,
        4242,
        at,
    )
    stored = await conn.fetch(
        "SELECT id, debits_pending, debits_posted, credits_pending, credits_posted, closed"
        " FROM accounts WHERE id = ANY($1::text[]) ORDER BY id",
        accounts,
    )
    assert [tuple(row) for row in stored] == totals


@pytest.mark.parametrize("count", [3, 300])
async def test_totals_for_an_account_that_is_not_there_refuse_the_whole_batch(
    conn: asyncpg.Connection, count: int
) -> None:
    """The batch planned on an account the UPDATE does not find: only a defect does that,
    and the batch must not commit half of what it planned."""
    prefix = f"missing{count}"
    accounts = await _open(conn, prefix, 2)
    at = datetime.now(UTC)
    before = tuple(await conn.fetchrow("SELECT size, batch_token, last_time FROM journal"))

    async def write() -> None:
        async with conn.transaction():
            size, _, _ = await pg.lock_journal(conn)
            await pg.write_batch(
                conn,
                _transfers(prefix, count, accounts, at),
                size,
                (size + count, 7, at),
                [(accounts[0], 0, 5, 0, 0, False), (f"{prefix}-nobody", 0, 0, 0, 5, False)],
            )

    with pytest.raises(RuntimeError, match="refusing it"):
        await write()
    assert tuple(await conn.fetchrow("SELECT size, batch_token, last_time FROM journal")) == before
    assert (
        await conn.fetchval("SELECT count(*) FROM transfers WHERE id LIKE $1", f"{prefix}-%") == 0
    )
    assert await conn.fetchval("SELECT debits_posted FROM accounts WHERE id = $1", accounts[0]) == 0


async def test_a_small_batch_finds_its_accounts_by_key_not_by_reading_them_all(
    conn: asyncpg.Connection,
) -> None:
    """With 20,000 accounts, analysed, a small batch's statements read no table whole
    (every plan PostgreSQL may pick for them: ``test_ledger_batch_plans.py``)."""
    accounts = await _open(conn, "scan", 20_000)
    await conn.execute("ANALYZE accounts")
    scans = (
        "SELECT relname, seq_scan FROM pg_stat_xact_user_tables"
        " WHERE relname IN ('accounts', 'transfers', 'journal') ORDER BY relname"
    )
    for attempt in range(8):
        at = datetime.now(UTC)
        async with conn.transaction():
            size, _, _ = await pg.lock_journal(conn)
            before = dict(await conn.fetch(scans))
            await pg.write_batch(
                conn,
                _transfers(f"scan-{attempt}", 2, accounts[attempt:], at),
                size,
                (size + 2, attempt, at),
                [
                    (accounts[attempt], 0, 1, 0, 0, False),
                    (accounts[attempt + 1], 0, 0, 0, 1, False),
                ],
            )
            after = dict(await conn.fetch(scans))
        tables = ("accounts", "journal", "transfers")
        read = {name: after.get(name, 0) - before.get(name, 0) for name in tables}
        assert read == dict.fromkeys(tables, 0), f"batch {attempt} read a whole table"


async def test_a_batch_is_written_only_inside_its_transaction(conn: asyncpg.Connection) -> None:
    """Outside a transaction the one statement would commit before its row counts are
    checked, so a defect could leave half a batch: it is refused before anything is sent."""
    accounts = await _open(conn, "outside", 2)
    at = datetime.now(UTC)
    size, _, _ = await pg.lock_journal(conn)  # no transaction: the lock ends at once
    with pytest.raises(RuntimeError, match="outside a transaction"):
        await pg.write_batch(
            conn, _transfers("outside", 1, accounts, at), size, (size + 1, 9, at), []
        )
    assert await conn.fetchval("SELECT count(*) FROM transfers WHERE id LIKE 'outside-%'") == 0
