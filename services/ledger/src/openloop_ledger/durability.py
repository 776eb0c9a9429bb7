"""The ledger refuses to run on a database that could lose an acknowledged transfer.

A transfer is acknowledged only after its batch commits; that promise holds only
if the commit reached disk. ``fsync = off`` or ``synchronous_commit`` other than
``on``/``remote_write``/``remote_apply`` (for example set per database or per role
by a well-meaning tuning script) would break it silently, so the ledger checks at
startup and does not serve.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_ledger import pg

DURABLE_COMMITS = {"on", "remote_write", "remote_apply"}


class UnsafeDatabaseError(RuntimeError):
    pass


async def require_durable_commits(engine: AsyncEngine) -> None:
    async with pg.connection(engine) as conn:
        fsync = await conn.fetchval("SHOW fsync")
        synchronous_commit = await conn.fetchval("SHOW synchronous_commit")
    problems = []
    if fsync != "on":
        problems.append(f"fsync is {fsync}")
    if synchronous_commit not in DURABLE_COMMITS:
        problems.append(f"synchronous_commit is {synchronous_commit}")
    if problems:
        raise UnsafeDatabaseError(
            "the ledger's database could lose acknowledged transfers ("
            + ", ".join(problems)
            + "); turn durability back on"
        )
