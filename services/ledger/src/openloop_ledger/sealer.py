"""Appends committed transfers to the Merkle log and publishes signed checkpoints.

One sealer runs per ledger database, whichever replica holds its advisory lock
(the others wait to take over). It reads journal entries in position order —
commit order, gap-free, see :mod:`openloop_ledger.tables` — hashes each into a
leaf, extends the tree, and in one transaction writes the changed tiles and a
checkpoint signed with the log's Ed25519 key (a C2SP signed note). It seals
at least every ``interval`` seconds, and at once when a batch of its own process
commits, so a committed transfer is covered by a checkpoint well within a second.

It runs inside a ledger server, or as a process of its own (``python -m
openloop_ledger seal``, with ``OPENLOOP_LEDGER_SEALER_IN_PROCESS=false`` on the
servers), as the Kubernetes manifests deploy it: then reading back, hashing and
signing take no time from the event loop that plans the batches. On its own it
learns of new entries by looking every ``interval``.

Leadership is the advisory lock's session, and every write of a leader goes through
that session: a leader whose session ends (killed, timed out, its server failed over)
can write nothing more, whatever it still believes. The leader's session therefore
must not outlive the leader, nor hang it:

- PostgreSQL ends the session once it has been idle for ``timeout`` seconds
  (``idle_session_timeout``, ``idle_in_transaction_session_timeout``), which a live
  leader, looking every ``interval``, never is. A leader whose host vanished without
  closing its socket (a lost node) would otherwise keep the lock, and every other
  sealer out, until TCP keepalive gives up, two hours later by default.
- The leader abandons its connection (closes the socket, so the server ends the
  session and the lock) when a seal takes longer than ``timeout``, and whenever it
  stops leading: an error, or its task cancelled at shutdown. An ``unlock`` sent to a
  server that stopped answering would wait as long as the seal did, and a cancellation
  that arrived between the lock's grant and its answer would leave the lock on a
  connection back in the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_ledger import pg
from openloop_ledger.leaf import LeafEncoder
from openloop_ledger.merkle.hashing import HASH_SIZE, leaf_hash
from openloop_ledger.merkle.note import Checkpoint, Signer, sign_checkpoint
from openloop_ledger.merkle.tiles import TILE_WIDTH, TileWriter, partial_tiles
from openloop_ledger.merkle.tree import CompactTree
from openloop_runtime.background import background

_log = logging.getLogger(__name__)
T = TypeVar("T")

SEALER_LOCK = 0x6F6C_6C65_6467_6572  # "olledger": one sealer per database
MAX_LEAVES_PER_SEAL = 100_000
"""Leaves per sealing transaction; a backlog is sealed in several checkpoints."""
MAX_RETRY_SECONDS = 5.0
"""The longest wait between attempts after failures in a row (the database out of reach,
a leaf key refused): the wait doubles from the interval up to this, so a sealer that
cannot seal neither floods its log nor keeps knocking on a database that is down."""


def retry_wait(interval: float, failures: int) -> float:
    """Seconds to wait after ``failures`` (≥ 1) failed attempts in a row."""
    return float(min(interval * 2 ** (failures - 1), max(MAX_RETRY_SECONDS, interval)))


@dataclass(frozen=True, slots=True)
class Sealed:
    tree_size: int
    leaves: int


class Sealer:
    def __init__(
        self,
        engine: AsyncEngine,
        encoder: LeafEncoder,
        signers: Sequence[Signer],
        committed: asyncio.Condition | None,
        *,
        interval: float,
        timeout: float = 30.0,
    ) -> None:
        self._engine = engine
        self._encoder = encoder
        if not signers:
            raise ValueError("the sealer needs a key to sign checkpoints with")
        self._signers = tuple(signers)
        """The log's key first (its name is the origin), then any co-signing keys."""
        self._committed = committed
        """Notified when this process commits a batch; ``None`` in a sealer of its own."""
        self._interval = interval
        if timeout <= interval:
            raise ValueError("the sealer's timeout must be longer than its interval")
        self._timeout = timeout
        """How long the leader's session may hang in a seal, or sit idle, before it ends."""
        self._failures = 0
        """Attempts that failed in a row (see :func:`retry_wait`)."""
        self.origin = signers[0].name

    async def seal(self, conn: pg.Connection) -> Sealed:
        """Seal what the journal holds beyond the latest checkpoint (at most one chunk)."""
        latest = await pg.latest_checkpoint(conn)
        start = latest["tree_size"] if latest else 0
        journal_size = await pg.journal_size(conn)
        if latest is not None and journal_size <= start:
            return Sealed(start, 0)
        end = min(journal_size, start + MAX_LEAVES_PER_SEAL)
        edge = bytes(latest["right_edge"]) if latest else b""
        partial = await pg.tiles(
            conn, [(tile.tile_level, tile.tile_index) for tile in partial_tiles(start)]
        )
        writer = TileWriter(start, {level: data for (level, _), data in partial.items()})
        tree = CompactTree(
            start,
            [edge[i : i + HASH_SIZE] for i in range(0, len(edge), HASH_SIZE)],
            on_node=writer.add,
        )
        if latest is not None and tree.root() != bytes(latest["root_hash"]):
            # The stored right edge no longer matches the signed root: never extend it.
            raise RuntimeError(f"checkpoint {start}'s right edge does not give its signed root")
        encoder = self._encoder
        rows = await pg.journal_rows(conn, start, end)
        for expected, row in enumerate(rows, start):
            if row["position"] != expected:
                raise RuntimeError(f"journal position {expected} is missing")
            tree.append(leaf_hash(pg.leaf_of_row(encoder, row)))
        if tree.size != end:
            raise RuntimeError(f"journal positions {tree.size}..{end - 1} are missing")
        root = tree.root()
        note = sign_checkpoint(Checkpoint(self.origin, end, root), *self._signers)
        async with conn.transaction():
            await pg.upsert_tiles(
                conn, [(r.tile_level, r.tile_index, r.data) for r in writer.flush()]
            )
            await conn.execute(
                "INSERT INTO checkpoints (tree_size, root_hash, right_edge, signed_note)"
                " VALUES ($1, $2, $3, $4)",
                end,
                root,
                b"".join(tree.right_edge()),
                note,
            )
        return Sealed(end, end - start)

    async def check_leaf_key(self, conn: pg.Connection) -> None:
        """Refuse to lead with another leaf key than the log's: the last sealed leaf, encoded
        with this sealer's key, must hash to the leaf hash its tile holds. A sealer started
        with the wrong key (a Secret missing from its Deployment falls back to the
        development key) would otherwise sign checkpoints over leaves no proof or audit can
        match, for ever: a signed checkpoint cannot be taken back."""
        latest = await pg.latest_checkpoint(conn)
        if latest is None or latest["tree_size"] == 0:
            return
        last = latest["tree_size"] - 1
        index, offset = divmod(last, TILE_WIDTH)
        (row,) = await pg.journal_rows(conn, last, last + 1)
        tile = (await pg.tiles(conn, [(0, index)]))[(0, index)]
        stored = bytes(tile[offset * HASH_SIZE : (offset + 1) * HASH_SIZE])
        if leaf_hash(pg.leaf_of_row(self._encoder, row)) != stored:
            raise RuntimeError(
                f"leaf {last} does not hash to the sealed tree's leaf with this sealer's"
                " leaf key: refusing to seal (is OPENLOOP_LEDGER_LEAF_KEY the log's?)"
            )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Sealer]:
        async with background(self._run(), "ledger-sealer"):
            yield self

    async def _run(self) -> None:
        while True:
            wait = self._interval
            try:
                async with pg.connection(self._engine) as conn:
                    try:
                        if await self._within_timeout(
                            conn, conn.fetchval("SELECT pg_try_advisory_lock($1)", SEALER_LOCK)
                        ):
                            await self._lead(conn)
                    except BaseException:
                        # Leading ends with the session: PostgreSQL releases its lock as
                        # soon as it sees the socket close, and the pool discards it.
                        conn.terminate()
                        raise
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._failures += 1
                wait = retry_wait(self._interval, self._failures)
                if self._failures == 1:
                    _log.exception("sealing failed; retrying")
                else:
                    _log.warning(
                        "sealing failed again: %s",
                        type(error).__name__,
                        extra={"failures_in_a_row": self._failures, "retry_seconds": wait},
                    )
            else:
                self._failures = 0  # stood by: the lock is another sealer's
            await asyncio.sleep(wait)

    async def _lead(self, conn: pg.Connection) -> None:
        idle = f"{int(self._timeout * 1000)}ms"
        await self._within_timeout(
            conn,
            conn.execute(
                f"SET idle_session_timeout = '{idle}';"
                f" SET idle_in_transaction_session_timeout = '{idle}'"
            ),
        )
        await self._within_timeout(conn, self.check_leaf_key(conn))
        while True:
            sealed = await self._within_timeout(conn, self.seal(conn))
            self._failures = 0
            if sealed.leaves == MAX_LEAVES_PER_SEAL:
                continue
            if sealed.leaves:
                # Under load, one checkpoint per interval rather than one per batch.
                await asyncio.sleep(self._interval)
                continue
            if self._committed is None:
                await asyncio.sleep(self._interval)
                continue
            async with self._committed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._committed.wait(), self._interval)

    async def _within_timeout(self, conn: pg.Connection, step: Awaitable[T]) -> T:
        """``step`` on ``conn``, whose socket is closed if it takes longer than the timeout
        (an unanswered query fails then, rather than waiting for TCP to give up)."""
        watchdog = asyncio.get_running_loop().call_later(self._timeout, conn.terminate)
        try:
            return await step
        finally:
            watchdog.cancel()
