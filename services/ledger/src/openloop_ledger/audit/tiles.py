"""Checking the stored upper Merkle tiles, which inclusion and consistency proofs are read from.

Level-0 tiles (the sealed leaf hashes) are compared with the rows one leaf at a time
(:mod:`openloop_ledger.audit.verifier`). A level-``L`` tile entry is the root of 256
entries of level ``L - 1``: the verifier's tree hands over each level-8 node it
completes (the root of 256 leaves), and this check folds every 256 of them into the
level above, so an upper tile is checked for one comparison per 256 leaves, not by
hashing the journal again.

A stored entry that differs from the rows' node is reported only if it does not match
the stored level below it either: otherwise it is right about what was sealed, and
the rows (already reported) are what changed. Level 0 is asked for by index, since the
verifier holds only the level-0 tiles of the rows it is hashing
(:mod:`openloop_ledger.audit.leaf_tiles`): a level-1 entry is checked as the tile below
it is completed, while that tile is held.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from openloop_ledger.merkle.hashing import HASH_SIZE
from openloop_ledger.merkle.tiles import TILE_HEIGHT, TILE_WIDTH

Report = Callable[[int, str, str], None]
"""Records a finding: ``(position, kind, message)``."""
LeafTile = Callable[[int], bytes]
"""The stored level-0 tile at an index (``b""``: none held)."""
_FULL = TILE_WIDTH * HASH_SIZE


def _root_of(tile: bytes) -> bytes:
    """The root of a full tile's 256 hashes (a perfect subtree of height 8)."""
    level = [tile[i : i + HASH_SIZE] for i in range(0, len(tile), HASH_SIZE)]
    sha256 = hashlib.sha256
    while len(level) > 1:
        level = [
            sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
        ]
    return level[0]


class TileCheck:
    def __init__(
        self, tiles: Mapping[tuple[int, int], bytes], leaf_tile: LeafTile, report: Report
    ) -> None:
        self._tiles = tiles
        """Stored tiles above level 0 by (tile level, tile index)."""
        self._leaf_tile = leaf_tile
        """Stored level-0 tiles by index, to tell who is wrong about a level-1 entry."""
        self._report = report
        self._below: dict[int, list[bytes]] = {}
        """Per tile level, the rows' entries of the tile being filled, for the level above."""

    def tile_root(self, index: int, node: bytes) -> None:
        """The rows' level-8 node ``index``: entry ``index`` of tile level 1."""
        self._entry(1, index, node)

    def _entry(self, level: int, index: int, node: bytes) -> None:
        tile_index, offset = divmod(index, TILE_WIDTH)
        stored = self._tiles.get((level, tile_index), b"")[
            offset * HASH_SIZE : (offset + 1) * HASH_SIZE
        ]
        if stored and stored != node:
            below = (
                self._leaf_tile(index) if level == 1 else self._tiles.get((level - 1, index), b"")
            )
            if len(below) != _FULL or _root_of(below) != stored:
                first = index << (TILE_HEIGHT * level)
                last = ((index + 1) << (TILE_HEIGHT * level)) - 1
                self._report(
                    first,
                    "tile",
                    f"entry {offset} of level-{level} tile {tile_index} (the node over "
                    f"positions {first}..{last}) matches neither the rows nor the sealed tile "
                    "below it: the tile was changed, and proofs served from it fail",
                )
        entries = self._below.setdefault(level, [])
        if len(entries) != offset:
            # A gap (rows deleted, reported) skipped nodes: this tile cannot be folded.
            entries.clear()
            if offset:
                return
        entries.append(node)
        if len(entries) == TILE_WIDTH:
            self._below[level] = []
            self._entry(level + 1, index >> TILE_HEIGHT, _root_of(b"".join(entries)))
