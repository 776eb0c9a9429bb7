"""The account totals' UPDATE, joined to a temporary table the planner knows nothing of."""

from __future__ import annotations

import asyncpg

from openloop_ledger import pg


async def test_writing_one_accounts_totals_does_not_scan_every_account(
    ledger_database: str,
) -> None:
    """A batch that changes one account must find it by the primary key, not by reading
    every account. The temporary table is never analysed, so PostgreSQL assumes it holds
    ten pages of rows (about 870) whatever it holds, and with 20,000 accounts it hashes the
    whole accounts table for one row (with 1,000,000 accounts it does the same for a batch
    of some thousands of accounts), under the journal lock."""
    conn = await asyncpg.connect(ledger_database.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(
            "INSERT INTO accounts (id, ledger, code, debits_must_not_exceed_credits,"
            " credits_must_not_exceed_debits, user_data, participant_id)"
            " SELECT 'scan-' || g, 764, 1, false, false, '', 'bank-a'"
            " FROM generate_series(1, 20000) g"
        )
        await conn.execute("ANALYZE accounts")
        scans = (
            "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables"
            " WHERE relname = 'accounts'"
        )
        for attempt in range(2):  # a connection's first batch, and every one after
            async with conn.transaction():
                await pg.lock_journal(conn)  # as every batch does before it writes
                seq_before, idx_before = await conn.fetchrow(scans)
                await pg.write_accounts(conn, [(f"scan-{attempt + 7}", 0, 5, 0, 0, False)])
                seq_after, idx_after = await conn.fetchrow(scans)
            assert (seq_after - seq_before, idx_after - idx_before) == (0, 1), (
                "the UPDATE read every account instead of one by its key"
            )
        assert await conn.fetchval("SELECT debits_posted FROM accounts WHERE id = 'scan-8'") == 5
    finally:
        await conn.execute("DELETE FROM accounts WHERE id LIKE 'scan-%'")
        await conn.close()
