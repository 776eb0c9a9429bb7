"""Reads the Merkle log: checkpoints, inclusion proofs and consistency proofs.

Proofs are computed from the stored tiles: the perfect subtrees a proof needs
(:func:`openloop_ledger.merkle.proofs.inclusion_nodes`) map to a handful of
tiles, fetched in one query, and the few hashes between stored levels are
recomputed. A proof is always for a checkpointed size, so it comes with the
signed checkpoint it verifies against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_ledger import pg
from openloop_ledger.leaf import LeafEncoder
from openloop_ledger.merkle import proofs
from openloop_ledger.merkle.note import checkpoint_origin
from openloop_ledger.merkle.tiles import (
    FULL_TILE_BYTES,
    TILE_HEIGHT,
    TileLocation,
    node_from_levels,
    nodes_from_tiles,
    tile_levels,
    tile_of,
    tiles_needed,
)
from openloop_ledger.validation import is_lookup_id
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    origin: str
    tree_size: int
    root_hash: bytes
    signed_note: str
    create_time: datetime


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    leaf: bytes
    hashes: list[bytes]
    checkpoint: CheckpointRecord


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    hashes: list[bytes]
    first: CheckpointRecord
    second: CheckpointRecord


class NodeCache:
    """Hashes of perfect subtrees, which never change once their leaves exist.

    Proofs of different leaves share their upper nodes, so most of a proof comes from here
    and only the tiles near the leaf are fetched and hashed. A proof works from a snapshot
    of what was cached when it started, so eviction never takes a node from under it.

    Two stores, both keyed by one int (``index << 6 | level``), never a tuple: ints and
    bytes are invisible to Python's cycle collector, whereas 200,000 cached tuples made
    every full collection walk them, a pause proofs felt at p99.

    - ``_nodes``: single nodes, from the tile levels (multiples of 8) and from partial
      tiles.
    - ``_levels``: for a full tile, every node it builds (:func:`tile_levels`, 255 hashes,
      8 KiB). The eight lowest hashes of a proof are siblings inside the leaf's tile, and
      rebuilding them takes about 250 SHA-256 calls, most of a proof's hashing; once the
      tile's levels are cached, any proof of a leaf in it takes none. ``max_tiles`` of
      2,048 hold about 16 MiB, the level-0 tiles of half a million leaves; a full store
      starts again, as the node store does.
    """

    def __init__(self, max_nodes: int = 200_000, max_tiles: int = 2_048) -> None:
        self._nodes: dict[int, bytes] = {}
        self._max_nodes = max_nodes
        self._levels: dict[int, bytes] = {}
        self._max_tiles = max_tiles

    def split(
        self, nodes: list[tuple[int, int]]
    ) -> tuple[dict[tuple[int, int], bytes], list[tuple[int, int]]]:
        """The cached hashes among ``nodes``, and the nodes still to compute from tiles."""
        stored, levels = self._nodes, self._levels
        cached = {}
        for level, index in nodes:
            known = stored.get(index << _LEVEL_BITS | level)
            if known is None and level % TILE_HEIGHT:
                location = tile_of(level, index)
                built = levels.get(_tile_key(location))
                if built is not None:
                    known = node_from_levels(built, location)
            if known is not None:
                cached[level, index] = known
        return cached, [node for node in nodes if node not in cached]

    def node_fn(
        self, cached: dict[tuple[int, int], bytes], tiles: dict[tuple[int, int], bytes]
    ) -> proofs.NodeFn:
        from_tiles = nodes_from_tiles(tiles)

        def node(level: int, index: int) -> bytes:
            known = cached.get((level, index))
            if known is not None:
                return known
            location = tile_of(level, index)
            data = tiles.get((location.tile_level, location.tile_index))
            if location.sublevel and data is not None and len(data) == FULL_TILE_BYTES:
                return node_from_levels(self._levels_of(location, data), location)
            known = from_tiles(level, index)
            self._remember((level, index), known)
            return known

        return node

    def _levels_of(self, location: TileLocation, data: bytes) -> bytes:
        key = _tile_key(location)
        built = self._levels.get(key)
        if built is None:
            built = tile_levels(bytes(data))
            if len(self._levels) >= self._max_tiles:
                self._levels.clear()
            self._levels[key] = built
        return built

    def _remember(self, node: tuple[int, int], value: bytes) -> None:
        if len(self._nodes) >= self._max_nodes:
            self._nodes.clear()
        level, index = node
        self._nodes[index << _LEVEL_BITS | level] = value


_LEVEL_BITS = 6
"""Levels of a tree of at most 2^63 leaves fit in 6 bits."""


def _tile_key(location: TileLocation) -> int:
    """The tile holding ``location``, keyed as the node stores key their entries."""
    return location.tile_index << _LEVEL_BITS | location.tile_level


class LogReader:
    def __init__(self, engine: AsyncEngine, encoder: LeafEncoder) -> None:
        self._engine = engine
        self._encoder = encoder
        self._nodes = NodeCache()
        self._checkpoints: dict[int, CheckpointRecord] = {}
        """Checkpoints by tree size: a signed checkpoint never changes, and proofs are
        mostly asked at a few recent sizes."""

    async def checkpoint(self, tree_size: int) -> CheckpointRecord:
        """The checkpoint for ``tree_size``; 0 means the latest."""
        known = self._known_checkpoint(tree_size)
        if known is not None:  # answered from memory, without taking a connection
            return known
        async with pg.connection(self._engine) as conn:
            return await self._checkpoint(conn, tree_size, "tree_size")

    async def inclusion_proof(
        self, *, transfer_id: str | None, leaf_index: int | None, tree_size: int
    ) -> InclusionProof:
        """The proof for a leaf named by index, or by transfer id (a bank knows its ids, not
        their positions). By index, the leaf's row comes with the tiles in one query; by id,
        the row comes first, as it gives the index, and then only the tiles."""
        async with pg.connection(self._engine) as conn:
            row = None
            if leaf_index is None:
                row = await self._row_of(conn, transfer_id)
                index = int(row["position"])
            else:
                index = leaf_index
            checkpoint = await self._checkpoint(conn, tree_size, "tree_size")
            if index >= checkpoint.tree_size:
                if tree_size:
                    raise invalid_field(
                        "tree_size", f"leaf {index} is not in the tree of size {tree_size}"
                    )
                raise DomainError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    ErrorReason.ERROR_REASON_LEAF_NOT_SEALED,
                    f"leaf {index} is committed but not yet in a checkpoint; retry shortly",
                    {"leaf_index": str(index), "tree_size": str(checkpoint.tree_size)},
                )
            cached, needed = self._nodes.split(proofs.inclusion_nodes(index, checkpoint.tree_size))
            refs = sorted(tiles_needed(needed))
            if row is None:
                row, found = await pg.row_and_tiles(conn, index, refs)
            else:
                found = await pg.tiles(conn, refs)
        node = self._nodes.node_fn(cached, found)
        hashes = proofs.inclusion_proof(node, index, checkpoint.tree_size)
        leaf = pg.leaf_of_row(self._encoder, row)
        return InclusionProof(index, leaf, hashes, checkpoint)

    async def consistency_proof(self, first_size: int, second_size: int) -> ConsistencyProof:
        if first_size < 1:
            raise invalid_field("first_tree_size", "first_tree_size must be at least 1")
        async with pg.connection(self._engine) as conn:
            second = await self._checkpoint(conn, second_size, "second_tree_size")
            if first_size > second.tree_size:
                raise invalid_field(
                    "first_tree_size",
                    f"first_tree_size {first_size} is larger than {second.tree_size}",
                )
            first = await self._checkpoint(conn, first_size, "first_tree_size")
            cached, needed = self._nodes.split(
                proofs.consistency_nodes(first_size, second.tree_size)
            )
            found = await pg.tiles(conn, sorted(tiles_needed(needed)))
        node = self._nodes.node_fn(cached, found)
        hashes = proofs.consistency_proof(node, first_size, second.tree_size)
        return ConsistencyProof(hashes, first, second)

    async def _row_of(self, conn: pg.Connection, transfer_id: str | None) -> pg.Record:
        if not transfer_id:
            raise invalid_field("leaf", "set transfer_id or leaf_index")
        row = await pg.transfer_row(conn, transfer_id) if is_lookup_id(transfer_id) else None
        if row is None:
            raise DomainError(
                grpc.StatusCode.NOT_FOUND,
                ErrorReason.ERROR_REASON_TRANSFER_NOT_FOUND,
                f"transfer {transfer_id!r} does not exist",
                {"resource": transfer_id},
            )
        return row

    def _known_checkpoint(self, tree_size: int) -> CheckpointRecord | None:
        """A checkpoint already read; never "the latest" (0), which moves."""
        return self._checkpoints.get(tree_size) if tree_size else None

    async def _checkpoint(
        self, conn: pg.Connection, tree_size: int, field: str
    ) -> CheckpointRecord:
        known = self._known_checkpoint(tree_size)
        if known is not None:
            return known
        row = await (pg.checkpoint_at(conn, tree_size) if tree_size else pg.latest_checkpoint(conn))
        if row is None:
            raise DomainError(
                grpc.StatusCode.NOT_FOUND,
                ErrorReason.ERROR_REASON_CHECKPOINT_NOT_FOUND,
                f"no checkpoint was published for tree size {tree_size}"
                if tree_size
                else "no checkpoint was published yet",
                {"tree_size": str(tree_size), "field": field},
            )
        record = CheckpointRecord(
            # From the note itself: a server that does not seal holds no signing key.
            origin=checkpoint_origin(row["signed_note"]),
            tree_size=row["tree_size"],
            root_hash=bytes(row["root_hash"]),
            signed_note=row["signed_note"],
            create_time=row["create_time"],
        )
        if len(self._checkpoints) >= _CHECKPOINTS_CACHED:
            self._checkpoints.clear()
        self._checkpoints[record.tree_size] = record
        return record


_CHECKPOINTS_CACHED = 1024
