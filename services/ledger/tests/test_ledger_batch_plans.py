"""A small batch's totals UPDATE (:func:`openloop_ledger.pg.write_batch`) probes the
accounts' primary key on every plan PostgreSQL may pick: a custom plan that knows the
array holds hundreds of ids, the generic plan (which assumes 10), and a generic plan made
while the table was small and kept after it grew (no ANALYZE has invalidated it yet)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import pytest

from openloop_ledger import pg
from openloop_ledger.app import MIGRATIONS_DIR
from openloop_ledger.model import Transfer, TransferSpec
from openloop_runtime import migrations

_OPEN = (
    "INSERT INTO accounts (id, ledger, code, debits_must_not_exceed_credits,"
    " credits_must_not_exceed_debits, user_data, participant_id)"
    " SELECT 'a' || g, 764, 1, false, false, '', 'bank-a'"
    " FROM generate_series($1::int, $2::int - 1) g"
)
_READ = (
    "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_xact_user_tables WHERE relname = 'accounts'"
)


async def _batches(conn: asyncpg.Connection, count: int, changed: int, first: int) -> list[int]:
    """Accounts rows each batch read by sequential scans."""
    read = []
    for n in range(first, first + count):
        at = datetime.now(UTC)
        ids = [f"a{(n * changed + k) % 1000}" for k in range(changed)]
        transfers = [
            Transfer(TransferSpec(f"t{n}-{k}", ids[2 * k], ids[2 * k + 1], 1, 764, 1, ""), at, -1)
            for k in range(changed // 2)
        ]
        async with conn.transaction():
            size, _, _ = await pg.lock_journal(conn)
            before = await conn.fetchval(_READ)
            totals = sorted((i, 0, n + 1, 0, n + 1, False) for i in ids)
            await pg.write_batch(conn, transfers, size, (size + len(transfers), n, at), totals)
            read.append(int(await conn.fetchval(_READ) - before))
    return read


@pytest.mark.parametrize(
    ("accounts", "changed", "grown_to"),
    [(1_000, 20, None), (20_000, 200, None), (1_000, 20, 100_000)],
    ids=["small table", "custom plan of 200 accounts", "generic plan kept while the table grew"],
)
async def test_a_small_batch_never_reads_every_account(
    fresh_database: Callable[[str], Awaitable[str]],
    accounts: int,
    changed: int,
    grown_to: int | None,
) -> None:
    url = await fresh_database("plans")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(_OPEN, 0, accounts)
        await conn.execute("ANALYZE accounts")
        read = await _batches(conn, 8, changed, 0)  # five custom plans, then the generic one
        if grown_to is not None:
            await conn.execute(_OPEN, accounts, grown_to)
            read += await _batches(conn, 2, changed, 8)
        assert read == [0] * len(read), f"rows of accounts read by each batch: {read}"
    finally:
        await conn.close()
