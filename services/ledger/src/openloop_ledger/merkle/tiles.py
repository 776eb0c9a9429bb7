"""The C2SP tlog-tiles layout (height 8) the store keeps the tree's node hashes in.

Tile ``(L, N)`` holds the hashes of the perfect nodes at tree level ``8 * L`` with indexes
``N * 256 .. N * 256 + width - 1``, concatenated (``32 * width`` bytes, width at most 256).
Only every eighth level is stored; a perfect node in between is rebuilt by hashing up the
``2 ** (level % 8)`` consecutive hashes below it, which always sit in one tile. Full tiles
never change; only the rightmost, partial tile of each tile level grows as leaves arrive.

This module maps nodes to tiles, rebuilds nodes from tile bytes, and turns the stream of
completed nodes from ``CompactTree`` into the tile rows to upsert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from hashlib import sha256
from typing import NamedTuple

from openloop_ledger.merkle.hashing import HASH_SIZE
from openloop_ledger.merkle.proofs import NodeFn

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile."""

FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE

TileRef = tuple[int, int]
"""A tile as ``(tile_level, tile_index)``."""


class TileLocation(NamedTuple):
    """Where a perfect node lives: hash ``2 ** sublevel`` tile entries from ``offset`` up."""

    tile_level: int
    tile_index: int
    offset: int
    sublevel: int


class TileRow(NamedTuple):
    """One tile's full current contents, as the store persists it."""

    tile_level: int
    tile_index: int
    data: bytes


class PartialTile(NamedTuple):
    """A right-edge tile that is not full yet, and how many hashes it holds."""

    tile_level: int
    tile_index: int
    width: int


def tile_of(level: int, index: int) -> TileLocation:
    """The tile holding the hashes that perfect node ``(level, index)`` is built from."""
    if level < 0 or index < 0:
        raise ValueError(f"invalid node (level={level}, index={index})")
    sublevel = level % TILE_HEIGHT
    first = index << sublevel
    return TileLocation(level // TILE_HEIGHT, first >> TILE_HEIGHT, first % TILE_WIDTH, sublevel)


def tiles_needed(nodes: Iterable[tuple[int, int]]) -> set[TileRef]:
    """The tiles to fetch to rebuild every ``(level, index)`` node in ``nodes``."""
    out: set[TileRef] = set()
    for level, index in nodes:
        loc = tile_of(level, index)
        out.add((loc.tile_level, loc.tile_index))
    return out


def tile_width(tile_level: int, tile_index: int, size: int) -> int:
    """How many hashes tile ``(tile_level, tile_index)`` holds in a tree of ``size`` leaves."""
    if tile_level < 0 or tile_index < 0 or size < 0:
        raise ValueError(f"invalid tile ({tile_level}, {tile_index}) or size {size}")
    count = size >> (TILE_HEIGHT * tile_level)
    return max(0, min(TILE_WIDTH, count - tile_index * TILE_WIDTH))


def partial_tiles(size: int) -> list[PartialTile]:
    """The non-empty partial tiles of a tree of ``size`` leaves, lowest tile level first.

    These are what a ``TileWriter`` resuming at ``size`` must be given.
    """
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    out: list[PartialTile] = []
    tile_level = 0
    count = size
    while count:
        width = count % TILE_WIDTH
        if width:
            out.append(PartialTile(tile_level, count >> TILE_HEIGHT, width))
        tile_level += 1
        count >>= TILE_HEIGHT
    return out


def node_from_tile(
    tile_hashes: bytes | bytearray | memoryview | Sequence[bytes], level: int, index: int
) -> bytes:
    """Hash of perfect node ``(level, index)`` from the contents of its tile (see ``tile_of``).

    ``tile_hashes`` is the tile as stored (concatenated 32-byte hashes) or a list of hashes.
    Raises ``ValueError`` if the tile is too short to hold the node.
    """
    loc = tile_of(level, index)
    count = 1 << loc.sublevel
    start, stop = loc.offset, loc.offset + count
    hashes: list[bytes]
    if isinstance(tile_hashes, bytes | bytearray | memoryview):
        data = bytes(tile_hashes)
        if len(data) % HASH_SIZE:
            raise ValueError(f"tile is {len(data)} bytes, not a multiple of {HASH_SIZE}")
        width = len(data) // HASH_SIZE
        hashes = [data[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(start, min(stop, width))]
    else:
        width = len(tile_hashes)
        hashes = list(tile_hashes[start:stop])
    if width < stop:
        raise ValueError(
            f"tile ({loc.tile_level}, {loc.tile_index}) has {width} hashes; "
            f"node (level={level}, index={index}) needs entries {start}..{stop - 1}"
        )
    while len(hashes) > 1:
        hashes = [
            sha256(b"\x01" + hashes[i] + hashes[i + 1]).digest() for i in range(0, len(hashes), 2)
        ]
    return hashes[0]


def tile_levels(data: bytes) -> bytes:
    """Every node a full tile builds above its own level, bottom up: 128 + 64 + ... + 1
    = 255 hashes, concatenated. A full tile never changes, so neither does this."""
    if len(data) != FULL_TILE_BYTES:
        raise ValueError(f"a full tile is {FULL_TILE_BYTES} bytes, not {len(data)}")
    level = [data[i : i + HASH_SIZE] for i in range(0, FULL_TILE_BYTES, HASH_SIZE)]
    out: list[bytes] = []
    while len(level) > 1:
        level = [
            sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
        ]
        out += level
    return b"".join(out)


def node_from_levels(levels: bytes, location: TileLocation) -> bytes:
    """Node ``location`` (``sublevel`` 1 to 7) from its tile's :func:`tile_levels`."""
    if not 1 <= location.sublevel < TILE_HEIGHT:
        raise ValueError(f"sublevel {location.sublevel} is not built above a tile")
    before = TILE_WIDTH - (2 * TILE_WIDTH >> location.sublevel)  # 128 + 64 + ... below it
    at = (before + (location.offset >> location.sublevel)) * HASH_SIZE
    return levels[at : at + HASH_SIZE]


def nodes_from_tiles(tiles: Mapping[TileRef, bytes]) -> NodeFn:
    """A ``NodeFn`` over fetched tiles, for ``proofs.inclusion_proof`` and friends."""

    def node(level: int, index: int) -> bytes:
        loc = tile_of(level, index)
        try:
            data = tiles[loc.tile_level, loc.tile_index]
        except KeyError:
            raise KeyError(
                f"tile ({loc.tile_level}, {loc.tile_index}) for node "
                f"(level={level}, index={index}) was not supplied"
            ) from None
        return node_from_tile(data, level, index)

    return node


class TileWriter:
    """Turns the perfect nodes completed by ``CompactTree`` into tile rows to upsert.

    Pass ``add`` as the tree's ``on_node``; nodes at levels that are not multiples of 8 are
    ignored. ``flush`` returns every tile that changed since the last flush with its whole
    new contents: each tile that filled up, then the current partial tile of each level that
    grew. To resume at ``size``, pass the contents of ``partial_tiles(size)`` keyed by tile
    level.
    """

    __slots__ = ("_bufs", "_changed", "_counts", "_full")

    def __init__(self, size: int = 0, partial: Mapping[int, bytes] | None = None) -> None:
        supplied = dict(partial or {})
        self._counts: list[int] = []
        self._bufs: list[bytearray] = []
        self._changed: set[int] = set()
        self._full: list[TileRow] = []
        expected = {tile.tile_level: tile.width for tile in partial_tiles(size)}
        count = size
        while count:
            self._counts.append(count)
            tile_level = len(self._bufs)
            width = expected.get(tile_level, 0)
            data = supplied.pop(tile_level, b"")
            if len(data) != width * HASH_SIZE:
                raise ValueError(
                    f"partial tile at tile level {tile_level} must be {width * HASH_SIZE} "
                    f"bytes for tree size {size}, got {len(data)}"
                )
            self._bufs.append(bytearray(data))
            count >>= TILE_HEIGHT
        if supplied:
            raise ValueError(f"tree size {size} has no partial tile at levels {sorted(supplied)}")

    def add(self, level: int, index: int, node_hash: bytes) -> None:
        """Record a completed perfect node (``CompactTree``'s ``on_node`` signature)."""
        if level % TILE_HEIGHT:
            return
        tile_level = level // TILE_HEIGHT
        if tile_level == len(self._counts):
            self._counts.append(0)
            self._bufs.append(bytearray())
        elif tile_level > len(self._counts):
            raise ValueError(f"node at level {level} arrived before any node below it")
        count = self._counts[tile_level]
        if index != count:
            raise ValueError(f"expected node {count} at level {level}, got {index}")
        if len(node_hash) != HASH_SIZE:
            raise ValueError(f"node hash is {len(node_hash)} bytes, not {HASH_SIZE}")
        buf = self._bufs[tile_level]
        buf += node_hash
        self._counts[tile_level] = count + 1
        if len(buf) == FULL_TILE_BYTES:
            self._full.append(TileRow(tile_level, count >> TILE_HEIGHT, bytes(buf)))
            buf.clear()
            self._changed.discard(tile_level)
        else:
            self._changed.add(tile_level)

    def flush(self) -> list[TileRow]:
        """The tiles changed since the last flush, ordered by (tile_level, tile_index)."""
        rows = self._full
        rows.extend(
            TileRow(
                tile_level, self._counts[tile_level] >> TILE_HEIGHT, bytes(self._bufs[tile_level])
            )
            for tile_level in self._changed
        )
        rows.sort(key=lambda row: (row.tile_level, row.tile_index))
        self._full = []
        self._changed = set()
        return rows
