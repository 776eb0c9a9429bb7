"""Where the verifier reads a ledger from: its PostgreSQL database, or an export directory.

An export is what an auditor takes away: ``transfers.jsonl`` (in position order; a row
listed out of order is a finding, put back in its place when it is near it),
``accounts.jsonl``, ``checkpoints.jsonl``, ``leaf_tiles.jsonl`` (the sealed leaf
hashes, in tile order: a line listed out of order is a finding, put back in its place
when it is near it), ``account_balances.jsonl`` (the balance history, in position order),
``pending_timeouts.jsonl`` (each row with its transfer's position) and
``journal.json``. Binary values are base64; times are microseconds since the Unix
epoch as the verifier's connection reads them (ISO 8601 is read too). An export made
before the history was exported has no ``account_balances.jsonl``: its history is not
checked; one made before ``pending_timeouts.jsonl`` has its timeouts unchecked.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from openloop_ledger.audit.leaf_tiles import LINE_WINDOW, LeafTileSource, OutOfOrder, TileLines
from openloop_ledger.audit.leaf_tiles import WINDOW as LEAF_TILE_WINDOW
from openloop_ledger.audit.verifier import (
    LedgerVerifier,
    RangeDigest,
    Row,
    SignedCheckpoint,
    trusted_checkpoints,
)
from openloop_ledger.leaf import LeafEncoder, epoch_micros_codec
from openloop_ledger.merkle.note import verifiers_from_keys
from openloop_ledger.pg import ACCOUNT_COLUMNS, CHECKPOINT_COLUMNS, TRANSFER_COLUMNS

CHUNK = 50_000
REORDER_WINDOW = CHUNK
"""Rows an export may list ahead of a row that belongs before them, with that row still
hashed in its place: the rows waiting for it are held, as many as a chunk at most."""
_BINARY = ("root_hash", "right_edge", "hashes", "mac")
_HISTORY_COLUMNS = (
    "account_id, position, transfer_id, debits_pending, debits_posted, credits_pending,"
    " credits_posted, create_time"
)
_HISTORY_ORDER = "account_balances ORDER BY position, account_id"
_TIMEOUTS = (
    "SELECT p.transfer_id, p.expires_at,"
    " (SELECT t.position FROM transfers t WHERE t.id = p.transfer_id) AS position"
    " FROM pending_timeouts p ORDER BY p.transfer_id"
)
"""Each row with the position of the transfer it names (NULL: none), where a finding about
it is reported. One primary-key probe per row: a join merged the whole transfers index
(5 times slower on 3,000 rows of a 150,000-row journal). The order makes exports
repeatable."""


class LedgerSource(Protocol):
    async def checkpoints(self) -> list[SignedCheckpoint]: ...
    async def journal_size(self) -> int: ...
    def transfers(self) -> AsyncIterator[list[Row]]: ...

    """Every transfer row in position order, negative positions included."""

    def out_of_order(self) -> list[tuple[int, str, int]]: ...

    """The rows ``transfers`` read listed after a row at a higher position: (position,
    transfer id, that position). Complete once ``transfers`` is exhausted."""

    async def accounts(self) -> list[Row]: ...
    async def leaf_tiles(self, indexes: Sequence[int]) -> dict[int, bytes]: ...

    """The level-0 tiles at ``indexes`` (ascending, each call from the last index of the
    call before it on) that the source holds: read as the journal is fed."""

    def tile_lines_out_of_order(self) -> list[OutOfOrder]: ...

    """The tiles ``leaf_tiles`` read listed after a tile at a higher index (see
    :class:`openloop_ledger.audit.leaf_tiles.TileLines`). Complete once the journal is fed."""

    async def upper_tiles(self) -> dict[tuple[int, int], bytes]: ...

    """Tiles above level 0, by (tile level, tile index): what proofs are served from."""

    async def history_accounts(self) -> list[Row]: ...

    """The accounts (rows, with their MACs) whose balance history is checked."""

    def balance_history(self) -> AsyncIterator[list[Row]]: ...

    """Every ``account_balances`` row, in (position, account) order."""

    def pending_timeouts(self) -> AsyncIterator[list[Row]] | None: ...

    """Every ``pending_timeouts`` row with its transfer's ``position`` (``None``: no such
    transfer), in any order; ``None`` when the source does not hold the table (an export
    made before it was exported), which is then not checked."""


async def verifier_for(
    source: LedgerSource,
    verifier_keys: str | Sequence[str],
    leaf_key: str,
    trusted: Sequence[str] = (),
) -> LedgerVerifier:
    """A verifier primed with ``source``'s checkpoints (plus the auditor's ``trusted`` ones)
    and its upper tiles, ready to be fed the journal through :func:`feed` (or
    :func:`feed_digest`), which reads the sealed leaf hashes as it goes.

    ``verifier_keys`` are the log's checkpoint keys, old and new once it has rotated its
    key (see :func:`openloop_ledger.merkle.note.verifiers_from_keys`)."""
    verifiers = verifiers_from_keys(verifier_keys)
    return LedgerVerifier(
        LeafEncoder(leaf_key.encode()),
        verifiers,
        [*await source.checkpoints(), *trusted_checkpoints(trusted, verifiers)],
        mac_key=leaf_key.encode(),
        upper_tiles=await source.upper_tiles(),
        history_accounts=await source.history_accounts(),
    )


async def feed(checker: LedgerVerifier, source: LeafTileSource, rows: Sequence[Row]) -> None:
    """Feed ``checker`` transfer rows in position order, with the level-0 tiles they are
    compared with."""
    await feed_digest(checker, source, checker.digest(rows))
    checker.add_rows_wanted(rows)


async def feed_digest(checker: LedgerVerifier, source: LeafTileSource, digest: RangeDigest) -> None:
    """Feed ``checker`` a range's digest a window of level-0 tiles at a time, each read
    from ``source`` just before the rows it covers: the checker never holds more."""
    for indexes, part in checker.leaf_tile_parts(digest):
        checker.hold_leaf_tiles(await source.leaf_tiles(indexes) if indexes else {})
        checker.feed_digest(part)


async def check_timeouts(checker: LedgerVerifier, source: LedgerSource) -> None:
    """Compare ``source``'s ``pending_timeouts`` rows with the unresolved pending transfers
    the journal leaves; call once ``checker`` has been fed the whole journal."""
    chunks = source.pending_timeouts()
    if chunks is None:
        return
    checker.expect_timeouts()
    async for chunk in chunks:
        checker.check_timeouts(chunk)


def dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@dataclass
class DatabaseSource:
    """A ledger database, read inside one REPEATABLE READ, READ ONLY transaction: the rows,
    checkpoints, tiles and balances the verifier sees are one consistent snapshot, even
    while the ledger keeps committing. ``snapshot`` lets worker processes share it."""

    conn: Any
    transaction: Any
    snapshot: str

    @classmethod
    async def connect(cls, database_url: str) -> DatabaseSource:
        conn = await asyncpg.connect(dsn(database_url))
        await epoch_micros_codec(conn)
        transaction = conn.transaction(isolation="repeatable_read", readonly=True)
        await transaction.start()
        snapshot: str = await conn.fetchval("SELECT pg_export_snapshot()")
        return cls(conn, transaction, snapshot)

    async def close(self) -> None:
        await self.transaction.rollback()
        await self.conn.close()

    async def checkpoints(self) -> list[SignedCheckpoint]:
        rows = await self.conn.fetch(f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints")
        return [
            SignedCheckpoint(
                r["tree_size"], bytes(r["root_hash"]), r["signed_note"], bytes(r["right_edge"])
            )
            for r in rows
        ]

    async def journal_size(self) -> int:
        size: int = await self.conn.fetchval("SELECT size FROM journal WHERE id = 1")
        return size

    async def transfers(self) -> AsyncIterator[list[Row]]:
        columns = ", ".join(TRANSFER_COLUMNS)
        # From the lowest position there is, not from 0: a row inserted at a negative
        # position (its CHECK dropped) is no leaf, and must be reported, not skipped.
        rows = await self.conn.fetch(
            f"SELECT {columns} FROM transfers ORDER BY position LIMIT $1", CHUNK
        )
        while rows:
            yield rows
            rows = await self.conn.fetch(
                f"SELECT {columns} FROM transfers WHERE position > $1 ORDER BY position LIMIT $2",
                rows[-1]["position"],
                CHUNK,
            )

    def out_of_order(self) -> list[tuple[int, str, int]]:
        return []  # read ORDER BY position, one row per position (the primary key)

    async def negative_transfers(self) -> list[Row]:
        """The rows at negative positions (none unless inserted around the CHECK)."""
        columns = ", ".join(TRANSFER_COLUMNS)
        return list(
            await self.conn.fetch(
                f"SELECT {columns} FROM transfers WHERE position < 0 ORDER BY position"
            )
        )

    async def accounts(self) -> list[Row]:
        return list(
            await self.conn.fetch(f"SELECT {ACCOUNT_COLUMNS}, mac FROM accounts ORDER BY id")
        )

    async def rows_at(self, positions: list[int]) -> list[Row]:
        columns = ", ".join(TRANSFER_COLUMNS)
        return list(
            await self.conn.fetch(
                f"SELECT {columns} FROM transfers WHERE position = ANY($1::bigint[])"
                " ORDER BY position",
                positions,
            )
        )

    async def leaf_tiles(self, indexes: Sequence[int]) -> dict[int, bytes]:
        # By index, not by range: rows deleted between two tiles need none of theirs.
        rows = await self.conn.fetch(
            "SELECT tile_index, hashes FROM merkle_tiles"
            " WHERE tile_level = 0 AND tile_index = ANY($1::bigint[])",
            indexes,
        )
        return {r["tile_index"]: bytes(r["hashes"]) for r in rows}

    def tile_lines_out_of_order(self) -> list[OutOfOrder]:
        return []  # read by index

    async def upper_tiles(self) -> dict[tuple[int, int], bytes]:
        rows = await self.conn.fetch(
            "SELECT tile_level, tile_index, hashes FROM merkle_tiles WHERE tile_level > 0"
        )
        return {(r["tile_level"], r["tile_index"]): bytes(r["hashes"]) for r in rows}

    async def history_accounts(self) -> list[Row]:
        return list(
            await self.conn.fetch(f"SELECT {ACCOUNT_COLUMNS}, mac FROM accounts WHERE history")
        )

    async def balance_history(self) -> AsyncIterator[list[Row]]:
        # One sorted scan through a cursor (the primary key leads with the account, so
        # position ranges would each scan the table), read as the replay advances.
        cursor = await self.conn.cursor(f"SELECT {_HISTORY_COLUMNS} FROM {_HISTORY_ORDER}")
        while rows := await cursor.fetch(CHUNK):
            yield rows

    def pending_timeouts(self) -> AsyncIterator[list[Row]]:
        return self._pending_timeouts()

    async def _pending_timeouts(self) -> AsyncIterator[list[Row]]:
        # Through a cursor: the table holds a row per unresolved pending transfer with a
        # timeout (or as many as were inserted), never read whole.
        cursor = await self.conn.cursor(_TIMEOUTS)
        while rows := await cursor.fetch(CHUNK):
            yield rows

    async def export(self, out: Path) -> int:
        """Write this database as an export directory; returns the transfers written."""
        out.mkdir(parents=True, exist_ok=True)
        count = 0
        with (out / "transfers.jsonl").open("w") as f:
            async for chunk in self.transfers():
                for row in chunk:
                    f.write(_json_line(row))
                count += len(chunk)
        _write_lines(out / "accounts.jsonl", await self.accounts())
        rows = await self.conn.fetch(f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints")
        _write_lines(out / "checkpoints.jsonl", rows)
        with (out / "leaf_tiles.jsonl").open("w") as f:
            # Through a cursor, in tile order, as the verifier reads them back.
            cursor = await self.conn.cursor(
                "SELECT tile_index, hashes FROM merkle_tiles WHERE tile_level = 0"
                " ORDER BY tile_index"
            )
            while tiles := await cursor.fetch(LEAF_TILE_WINDOW):
                for tile in tiles:
                    f.write(_json_line(tile))
        with (out / "account_balances.jsonl").open("w") as f:
            async for history in self.balance_history():
                for row in history:
                    f.write(_json_line(row))
        with (out / "pending_timeouts.jsonl").open("w") as f:
            async for timeouts in self.pending_timeouts():
                for row in timeouts:
                    f.write(_json_line(row))
        (out / "journal.json").write_text(json.dumps({"size": await self.journal_size()}))
        return count


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _json_line(row: Row) -> str:
    return json.dumps({key: _encode(row[key]) for key in row.keys()}) + "\n"  # noqa: SIM118


def _write_lines(path: Path, rows: Any) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(_json_line(row))


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("create_time", "expires_at"):
        if key in row and isinstance(row[key], str):
            row[key] = datetime.fromisoformat(row[key])
    for key in _BINARY:
        if key in row and isinstance(row[key], str):
            row[key] = base64.b64decode(row[key])
    return row


def _read_lines(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [_decode(json.loads(line)) for line in f if line.strip()]


@dataclass
class ExportSource:
    """An export directory. Its ``transfers.jsonl`` is read in the order of its lines, which
    nothing but the exporter keeps in position order: rows listed out of order are named
    (:meth:`out_of_order`) and put back in their place, within ``reorder_window`` rows."""

    directory: Path
    reorder_window: int = REORDER_WINDOW
    tile_window: int = LINE_WINDOW
    """As ``reorder_window``, for the lines of ``leaf_tiles.jsonl``."""
    _out_of_order: list[tuple[int, str, int]] = field(default_factory=list, repr=False)
    _tile_lines: TileLines | None = field(default=None, repr=False)

    async def checkpoints(self) -> list[SignedCheckpoint]:
        return [
            SignedCheckpoint(r["tree_size"], r["root_hash"], r["signed_note"], r.get("right_edge"))
            for r in _read_lines(self.directory / "checkpoints.jsonl")
        ]

    async def journal_size(self) -> int:
        size: int = json.loads((self.directory / "journal.json").read_text())["size"]
        return size

    async def transfers(self) -> AsyncIterator[list[Row]]:
        self._out_of_order = []
        if self._tile_lines is not None:
            self._tile_lines.close()  # a new pass reads the tiles again, from the start
        self._tile_lines = None
        chunks = _chunks(self.directory / "transfers.jsonl")
        async for chunk in _in_position_order(chunks, self._out_of_order, self.reorder_window):
            yield chunk

    def out_of_order(self) -> list[tuple[int, str, int]]:
        return self._out_of_order

    async def accounts(self) -> list[Row]:
        return list(_read_lines(self.directory / "accounts.jsonl"))

    async def leaf_tiles(self, indexes: Sequence[int]) -> dict[int, bytes]:
        if self._tile_lines is None:
            self._tile_lines = TileLines(self.directory / "leaf_tiles.jsonl", self.tile_window)
        return self._tile_lines.tiles(indexes)

    def tile_lines_out_of_order(self) -> list[OutOfOrder]:
        return self._tile_lines.out_of_order if self._tile_lines is not None else []

    async def upper_tiles(self) -> dict[tuple[int, int], bytes]:
        return {}  # an export holds the leaf hashes only: no proofs are served from it

    async def history_accounts(self) -> list[Row]:
        if not (self.directory / "account_balances.jsonl").exists():
            return []  # exported before the history was: nothing to check it against
        return [a for a in await self.accounts() if a.get("history")]

    async def balance_history(self) -> AsyncIterator[list[Row]]:
        path = self.directory / "account_balances.jsonl"
        if not path.exists():
            return
        async for chunk in _chunks(path):
            yield chunk

    def pending_timeouts(self) -> AsyncIterator[list[Row]] | None:
        path = self.directory / "pending_timeouts.jsonl"
        if not path.exists():
            return None  # exported before the timeouts were: nothing to check them against
        return _chunks(path)


async def _chunks(path: Path) -> AsyncIterator[list[Row]]:
    """The rows of a JSON-lines file, :data:`CHUNK` at a time."""
    chunk: list[Row] = []
    with path.open() as f:
        for line in f:
            chunk.append(_decode(json.loads(line)))
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


async def _in_position_order(
    chunks: AsyncIterator[list[Row]], out_of_order: list[tuple[int, str, int]], window: int
) -> AsyncIterator[list[Row]]:
    """``chunks`` of rows in position order, as the verifier takes them, however a file
    lists them, within ``window`` rows; each row listed after a higher position goes to
    ``out_of_order``.

    Hashing rows in the order a file lists them, the verifier once took a row listed
    after its successor for a deletion, then an insertion, and ran its tree a leaf ahead
    of the positions. A row listed ahead of its place waits here (a min-heap) until the
    rows before it have come, or until ``window`` rows wait: then the lowest is passed on
    and the verifier names the positions below it missing (rows deleted, or listed more
    than ``window`` rows later, which it names too). So memory stays bounded, and a file
    in position order costs a comparison or two per row."""
    held: list[tuple[int, int, Row]] = []  # (position, arrival: file order at one position, row)
    following = 0  # the position the next row passed on should have
    listed_last = -1
    arrivals = 0
    for_verifier: list[Row] = []
    async for chunk in chunks:
        for row in chunk:
            position = row["position"]
            if 0 <= position < listed_last:  # a negative position is named as inserted
                out_of_order.append((position, row["id"], listed_last))
            listed_last = position
            if position == following and not held:
                for_verifier.append(row)
                following += 1
            elif position < following:
                for_verifier.append(row)  # a repeated or far late position: the verifier names it
            else:
                heapq.heappush(held, (position, arrivals, row))
                arrivals += 1
                while held and (held[0][0] <= following or len(held) > window):
                    lowest, _, waited = heapq.heappop(held)
                    for_verifier.append(waited)
                    following = max(following, lowest + 1)
        if for_verifier:
            yield for_verifier
            for_verifier = []
    if held:
        yield [row for _, _, row in sorted(held)]
