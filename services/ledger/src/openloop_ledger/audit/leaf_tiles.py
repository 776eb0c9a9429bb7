"""The sealed leaf hashes (level-0 tiles) the verifier compares the rows with, a window at a time.

A level-0 tile holds 256 leaf hashes of 32 bytes: 32 bytes per transfer, about 3 GB
for a journal of 100 million transfers, which the verifier once read whole before
hashing a row. It needs a tile only while it hashes the rows that tile covers (and
checks the level-1 entry over it, and classifies the rows that differ from it), and
it hashes the rows in position order: so it holds at most :data:`WINDOW` tiles, read
in tile order as the journal is fed. :func:`parts` cuts a range of rows the verifier
is about to take into pieces that each need no more than the window; the source reads
each piece's tiles (a database by index, an export's file line after line:
:class:`TileLines`) before the verifier takes it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from openloop_ledger.merkle.hashing import HASH_SIZE
from openloop_ledger.merkle.tiles import TILE_WIDTH

if TYPE_CHECKING:
    from openloop_ledger.audit.verifier import RangeDigest

WINDOW = 256
"""Level-0 tiles the verifier holds at most (2 MiB): more than a chunk of rows spans
(:data:`openloop_ledger.audit.sources.CHUNK`), so a journal in order is fed a chunk
at a time, with one read of tiles per chunk."""
LINE_WINDOW = 256
"""Tile lines an export may list ahead of a tile that belongs before them, with that
tile still compared with its rows: as for rows
(:data:`openloop_ledger.audit.sources.REORDER_WINDOW`), the lines waiting for it are
held, this many at most."""


class LeafTileSource(Protocol):
    async def leaf_tiles(self, indexes: Sequence[int]) -> dict[int, bytes]: ...

    """The level-0 tiles at ``indexes`` (ascending, each call from the last index of the
    call before it on) that the source holds."""


def parts(
    digest: RangeDigest, expected: int, window: int
) -> Iterator[tuple[list[int], RangeDigest]]:
    """``digest`` cut in pieces the verifier takes in turn, each with the level-0 tiles it
    is compared with (ascending, at most ``window``): the last piece carries the replay.

    ``expected`` is the position the verifier's tree takes next. Rows below it are late
    (named, not compared) and need no tile; every later row raises it, as the verifier
    does, so the tiles of each piece are exactly those its rows are compared with, and a
    tile completed by a piece (whose level-1 entry is checked then) is among them. A run
    is cut at a tile boundary where the window is full: a run fed in two pieces is
    compared and hashed as in one."""
    tiles: list[int] = []
    runs: list[tuple[int, bytes]] = []
    for run_start, run_hashes in digest.runs:
        start, hashes = run_start, run_hashes
        end = start + len(hashes) // HASH_SIZE
        position = max(start, expected)
        while position < end:
            tile = position // TILE_WIDTH
            if not tiles or tiles[-1] != tile:
                if len(tiles) == window:
                    if position > start:
                        cut = (position - start) * HASH_SIZE
                        runs.append((start, hashes[:cut]))
                        start, hashes = position, hashes[cut:]
                    yield tiles, _leaves_only(digest, runs)
                    tiles, runs = [], []
                tiles.append(tile)
            position = min(end, (tile + 1) * TILE_WIDTH)
        runs.append((start, hashes))
        expected = max(expected, end)
    yield tiles, dataclasses.replace(digest, runs=runs)


def _leaves_only(digest: RangeDigest, runs: list[tuple[int, bytes]]) -> RangeDigest:
    """A piece of ``digest`` before its last: leaf hashes, nothing to replay or name."""
    return dataclasses.replace(
        digest, runs=runs, plain_totals=[], ordered=[], malformed=[], inserted=[]
    )


OutOfOrder = tuple[int, int, bool]
"""A tile line an export lists after a tile at a higher (or the same) index: (its tile
index, that higher index, whether it was still in time to be compared with its rows)."""


class TileLines:
    """An export's ``leaf_tiles.jsonl``, read in order as the verifier asks for tiles.

    Nothing but the exporter keeps the lines in tile order. A line listed after a higher
    one waits for its place, as rows do (:func:`openloop_ledger.audit.sources.
    _in_position_order`): while a tile the verifier asks for has not come, up to
    ``window`` later tiles are read and held. Every line listed out of order is named
    (:attr:`out_of_order`), and one that comes after its rows were compared, or repeats
    a tile, is named as such: its rows were checked without it, which is never silent.
    """

    def __init__(self, path: Path, window: int = LINE_WINDOW) -> None:
        self._path = path
        self._window = window
        self._file: TextIO | None = None
        self._done = not path.exists()
        self._ahead: dict[int, bytes] = {}
        """Tiles read and not yet behind the verifier, by index."""
        self._passed = 0
        """Tiles below this index were asked for (or skipped) already: too late now."""
        self._following = 0
        """The lowest tile index from ``_passed`` on not read yet."""
        self._listed_last = -1
        self.out_of_order: list[OutOfOrder] = []

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._done = True

    def tiles(self, indexes: Sequence[int]) -> dict[int, bytes]:
        """The tiles at ``indexes`` (ascending, none below the last index asked for before)
        that the file holds, read up to them."""
        if not indexes:
            return {}
        last = indexes[-1]
        beyond = sum(1 for index in self._ahead if index > last)
        while not self._done and self._following <= last and beyond <= self._window:
            index = self._read()
            if index is not None and index > last:
                beyond += 1
        ahead = self._ahead
        found = {index: ahead[index] for index in indexes if index in ahead}
        # The next request starts at ``last`` at the lowest (a tile the rows just fed end
        # in): every tile below it is done with.
        self._ahead = {index: data for index, data in ahead.items() if index >= last}
        self._passed = last + 1
        self._following = max(self._following, self._passed)
        while self._following in self._ahead:
            self._following += 1
        return found

    def _read(self) -> int | None:
        """Read one line; returns the index of the tile it adds (``None``: none)."""
        if self._file is None:
            self._file = self._path.open()
        line = self._file.readline()
        if not line:
            self.close()
            return None
        if not line.strip():
            return None
        row = json.loads(line)
        index: int = row["tile_index"]
        usable = index >= self._passed and index not in self._ahead
        if index <= self._listed_last:
            self.out_of_order.append((index, self._listed_last, usable))
        self._listed_last = index
        if not usable:
            return None
        self._ahead[index] = base64.b64decode(row["hashes"])
        while self._following in self._ahead:
            self._following += 1
        return index
