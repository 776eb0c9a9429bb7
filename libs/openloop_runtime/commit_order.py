"""Numbers that become visible in the order they were taken, for lists paged by them.

An audit trail numbered by an identity column (``event_id``) and listed newest first, a page
at a time by "numbers below the last one listed", is only as good as its numbers' order. A
number is taken at INSERT but the row appears at COMMIT, so two writers can commit in the
other order: writer A takes 4, writer B takes 5 and commits, a reader lists 5, 3, 2, ...,
then A commits 4, behind everything the reader has passed. Neither paging on nor reading
again from the top down to the newest event seen ever shows it: a skipped audit event.

Here every writer of such a table takes one transaction-level advisory lock (a key derived
from the table's name) just before the INSERT that numbers its row, and holds it until its
transaction ends, which PostgreSQL does only after the commit is visible. So at most one
transaction at a time holds numbers not yet committed, and they are greater than every
committed one: the committed rows are always every number up to some point (less the
numbers of rolled-back writers). Readers need nothing: any snapshot sees such a prefix, so
"numbers below the last one listed" never misses a row, and every existing page token stays
valid. It holds once every writer takes its turn: while replicas of an earlier version still
write (a rolling upgrade), a reader can still miss an event they write.

Why this and not the alternatives:

- Reading only below the lowest number a transaction in flight may hold needs that number,
  and rows in flight are invisible. Storing each row's ``pg_current_xact_id()`` and
  returning only rows whose transaction is older than the snapshot's xmin is not enough
  while the list is ordered by number: a transaction that got its xid first can take its
  number last (it wrote something else before its audit row), so a row of a transaction
  still in flight can be numbered below a row returned. It is correct only with the list
  ordered by (xid, number), which changes the order the API documents and every page token,
  and holds the newest rows back behind the oldest writing transaction on the whole
  cluster (xids are cluster-wide), an idle-in-transaction session anywhere included.
- Readers taking the lock exclusively to wait out the writers in flight would make every
  audit read wait for the slowest writer (an import batch) and, queued, stop new writers
  behind it.

The cost is on writers only, and small where this is used: writers of one table wait for
each other from the numbering INSERT to the end of the commit (an INSERT and a flush), and the
tables are operators' changes and reads of personal data, never a payment's path (an import
writes one event per batch of up to 5,000 rows). To keep it so, the numbering INSERT must
be the transaction's last write: whatever the transaction does after it, every other writer
waits for, and a lock it then waited for could be held by a writer queued behind it (a
deadlock PostgreSQL would end by failing one of them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_TAKE_TURN = text("SELECT pg_advisory_xact_lock(:key)")


@dataclass(frozen=True, slots=True)
class CommitOrder:
    """The writers of one numbered table, in the order of their commits."""

    table: str

    @property
    def key(self) -> int:
        """The advisory lock's key: a signed 64-bit number derived from the table's name,
        apart from the service's other advisory locks."""
        digest = hashlib.sha256(f"openloop.commit_order:{self.table}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    async def take_turn(self, conn: AsyncConnection) -> None:
        """Wait until no other transaction holds numbers of ``table`` it has not committed,
        then hold the turn until ``conn``'s transaction ends. Call it right before the INSERT
        that takes the number, in the transaction that commits it; taking it again in the
        same transaction (a second row) costs nothing more."""
        await conn.execute(_TAKE_TURN, {"key": self.key})
