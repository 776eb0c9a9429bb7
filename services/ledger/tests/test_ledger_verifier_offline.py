"""The verifier's own logic on a synthetic journal: chunking, sealed leaves, proofs' cache."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from openloop_ledger.account_mac import mac_of_row
from openloop_ledger.audit import sources
from openloop_ledger.audit.classify import WINDOW
from openloop_ledger.audit.verifier import LedgerVerifier, SignedCheckpoint
from openloop_ledger.config import DEVELOPMENT_LEAF_KEY, DEVELOPMENT_LOG_SIGNING_KEY
from openloop_ledger.leaf import LeafEncoder
from openloop_ledger.log import NodeCache
from openloop_ledger.merkle.hashing import leaf_hash
from openloop_ledger.merkle.note import (
    Checkpoint,
    NoteError,
    Signer,
    generate_signer_key,
    sign_checkpoint,
)
from openloop_ledger.merkle.proofs import inclusion_nodes, inclusion_proof, verify_inclusion
from openloop_ledger.merkle.tiles import TileWriter, tile_of, tiles_needed
from openloop_ledger.merkle.tree import CompactTree
from openloop_ledger.pg import leaf_of_row

SIZE = 700
KEY = DEVELOPMENT_LEAF_KEY.encode()
ENCODER = LeafEncoder(KEY)
SIGNER = Signer.from_key(DEVELOPMENT_LOG_SIGNING_KEY)
AT = datetime(2026, 11, 26, tzinfo=UTC)


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "id": f"t-{n}",
            "position": n,
            "debit_account_id": f"a-{n % 7}",
            "credit_account_id": f"a-{(n + 1) % 7}",
            "amount": 10 + n,
            "pending_id": None,
            "timeout": 0,
            "flags": 0,
            "ledger": 764,
            "code": 1,
            "user_data": "",
            "create_time": AT,
        }
        for n in range(SIZE)
    ]


def _sealed(rows: list[dict[str, Any]]) -> tuple[dict[tuple[int, int], bytes], SignedCheckpoint]:
    writer = TileWriter()
    tree = CompactTree(on_node=writer.add)
    for row in rows:
        tree.append(leaf_hash(leaf_of_row(ENCODER, row)))
    tiles = {(r.tile_level, r.tile_index): r.data for r in writer.flush()}
    note = sign_checkpoint(Checkpoint(SIGNER.name, tree.size, tree.root()), SIGNER)
    return tiles, SignedCheckpoint(tree.size, tree.root(), note)


def _accounts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, list[int]] = {}
    for row in rows:
        totals.setdefault(row["debit_account_id"], [0, 0])[0] += row["amount"]
        totals.setdefault(row["credit_account_id"], [0, 0])[1] += row["amount"]
    accounts = [
        {
            "id": account,
            "ledger": 764,
            "code": 1,
            "debits_must_not_exceed_credits": False,
            "credits_must_not_exceed_debits": False,
            "history": False,
            "created_closed": False,
            "closed": False,
            "user_data": "",
            "participant_id": "bank-a",
            "debits_pending": 0,
            "debits_posted": debits,
            "credits_pending": 0,
            "credits_posted": credits,
        }
        for account, (debits, credits) in totals.items()
    ]
    return [{**a, "mac": mac_of_row(KEY, a)} for a in accounts]


def _verifier(tiles: dict[tuple[int, int], bytes], checkpoint: SignedCheckpoint) -> LedgerVerifier:
    return LedgerVerifier(
        ENCODER,
        [SIGNER.verifier()],
        [checkpoint],
        mac_key=KEY,
        sealed_tiles={index: data for (level, index), data in tiles.items() if level == 0},
    )


@pytest.mark.parametrize("chunk", [1, 100, 300, SIZE])
def test_a_changed_row_is_named_whatever_the_chunking(chunk: int) -> None:
    rows = _rows()
    tiles, checkpoint = _sealed(rows)
    accounts = _accounts(rows)
    rows[400] = {**rows[400], "amount": rows[400]["amount"] + 1}
    verifier = _verifier(tiles, checkpoint)
    for start in range(0, SIZE, chunk):
        verifier.feed(rows[start : start + chunk])
    report = verifier.finish(accounts, SIZE)
    first = report.first
    assert first is not None
    assert (first.kind, first.position) == ("changed", 400)


def test_accounts_without_a_mac_are_named_not_a_crash() -> None:
    """An export made before accounts carried MACs has no ``mac`` column at all."""
    rows = _rows()
    tiles, checkpoint = _sealed(rows)
    verifier = _verifier(tiles, checkpoint)
    verifier.feed(rows)
    accounts = [{k: v for k, v in a.items() if k != "mac"} for a in _accounts(rows)]
    report = verifier.finish(accounts, SIZE)
    assert [f.kind for f in report.findings] == ["account"] * len(accounts)
    assert all("has no MAC" in f.message for f in report.findings)


def test_proofs_stay_right_when_the_node_cache_keeps_evicting() -> None:
    tiles, checkpoint = _sealed(_rows())
    cache = NodeCache(max_nodes=3)
    for index in (0, 1, 255, 256, 257, 400, SIZE - 1, 3, 400):
        cached, missing = cache.split(inclusion_nodes(index, SIZE))
        needed = {tile: tiles[tile] for tile in tiles_needed(missing)}
        proof = inclusion_proof(cache.node_fn(cached, needed), index, SIZE)
        leaf = leaf_hash(leaf_of_row(ENCODER, _rows()[index]))
        verify_inclusion(leaf, index, SIZE, proof, checkpoint.root_hash)


def test_a_full_tile_is_hashed_once_for_every_proof_of_its_leaves() -> None:
    tiles, checkpoint = _sealed(_rows())
    cache = NodeCache()
    rows = _rows()

    def prove(index: int) -> list[tuple[int, int]]:
        cached, missing = cache.split(inclusion_nodes(index, SIZE))
        needed = {tile: tiles[tile] for tile in tiles_needed(missing)}
        proof = inclusion_proof(cache.node_fn(cached, needed), index, SIZE)
        leaf = leaf_hash(leaf_of_row(ENCODER, rows[index]))
        verify_inclusion(leaf, index, SIZE, proof, checkpoint.root_hash)
        return missing

    def in_tile(nodes: list[tuple[int, int]], tile: tuple[int, int]) -> list[int]:
        """The levels of ``nodes`` that are rebuilt from ``tile``."""
        return [level for level, index in nodes if tile_of(level, index)[:2] == tile]

    assert in_tile(prove(3), (0, 0)) == list(range(8))
    # Leaf 200 shares no sibling below level 7 with leaf 3, yet only the leaf-level
    # sibling is read from the tile now: levels 1 to 6 come from the cached tile levels.
    assert in_tile(prove(200), (0, 0)) == [0]
    # The partial third tile (leaves 512..699) is not cached whole, only node by node:
    # leaf 530 shares its siblings from level 5 up with leaf 520, and rebuilds the rest.
    assert in_tile(prove(520), (0, 2)) == list(range(7))
    assert in_tile(prove(530), (0, 2)) == [0, 1, 2, 3, 4]


def test_proofs_stay_right_when_the_tile_cache_keeps_evicting() -> None:
    tiles, checkpoint = _sealed(_rows())
    cache = NodeCache(max_tiles=1)
    for index in (0, 300, 5, 511, 256, 0, 699):
        cached, missing = cache.split(inclusion_nodes(index, SIZE))
        needed = {tile: tiles[tile] for tile in tiles_needed(missing)}
        proof = inclusion_proof(cache.node_fn(cached, needed), index, SIZE)
        leaf = leaf_hash(leaf_of_row(ENCODER, _rows()[index]))
        verify_inclusion(leaf, index, SIZE, proof, checkpoint.root_hash)


@pytest.mark.parametrize("split", [0, 1, 255, 256, 333, SIZE])
def test_bulk_appends_build_the_same_tree_as_single_ones(split: int) -> None:
    leaves = [leaf_hash(leaf_of_row(ENCODER, row)) for row in _rows()]
    one_by_one = CompactTree()
    for leaf in leaves:
        one_by_one.append(leaf)
    bulk = CompactTree()
    bulk.extend_concatenated(b"".join(leaves[:split]))
    bulk.extend_concatenated(b"".join(leaves[split:]))
    assert (bulk.size, bulk.root(), bulk.right_edge()) == (
        one_by_one.size,
        one_by_one.root(),
        one_by_one.right_edge(),
    )


class _CountingEncoder(LeafEncoder):
    """Counts the leaves encoded, to see the verifier's work grow with the rows."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.encoded = 0

    def encode_row(self, *values: Any) -> bytes:
        self.encoded += 1
        return super().encode_row(*values)


def test_a_mass_update_is_classified_in_work_linear_in_the_rows_that_differ() -> None:
    """Every row changed but two swapped ones: each differing row is encoded once and tried
    at a bounded number of other positions (trying each at every other differing position,
    as the verifier once did, encoded ~490,000 leaves here and held every row)."""
    rows = _rows()
    tiles, checkpoint = _sealed(rows)
    tampered = [{**row, "amount": row["amount"] + 1} for row in rows]
    tampered[300], tampered[301] = (
        {**rows[301], "position": 300},
        {**rows[300], "position": 301},
    )
    encoder = _CountingEncoder(KEY)
    verifier = LedgerVerifier(
        encoder,
        [SIGNER.verifier()],
        [checkpoint],
        mac_key=KEY,
        sealed_tiles={index: data for (level, index), data in tiles.items() if level == 0},
    )
    for start in range(0, SIZE, 100):
        verifier.feed(tampered[start : start + 100])
    report = verifier.finish(_accounts(tampered), SIZE)
    # One encoding per row to hash it, one more per differing row to classify it.
    assert encoder.encoded <= 2 * SIZE
    assert verifier.classifier.trials <= 2 * WINDOW * SIZE
    assert verifier.classifier.most_held <= WINDOW
    first = report.first
    assert first is not None
    assert (first.kind, first.position) == ("changed", 0)
    rows_found = [(f.position, f.kind) for f in report.findings if f.rank == 0]
    assert rows_found == [(n, "reordered" if n in {300, 301} else "changed") for n in range(SIZE)]


@pytest.mark.parametrize(
    "moves",
    [{100: 600, 600: 100}, {10: 11, 11: 12, 12: 10}, {0: SIZE - 1, SIZE - 1: 0}],
    ids=["far-swap", "rotation", "ends"],
)
def test_moved_rows_are_named_as_reordered(moves: dict[int, int]) -> None:
    rows = _rows()
    tiles, checkpoint = _sealed(rows)
    moved = list(rows)
    for old, new in moves.items():
        moved[new] = {**rows[old], "position": new}
    verifier = _verifier(tiles, checkpoint)
    verifier.feed(moved)
    report = verifier.finish(_accounts(moved), SIZE)
    assert [(f.position, f.kind) for f in report.findings if f.rank == 0] == [
        (position, "reordered") for position in sorted(moves)
    ]
    came_from = {new: old for old, new in moves.items()}
    for finding in report.findings:
        if finding.kind == "reordered":
            assert f"was sealed at position {came_from[finding.position]}:" in finding.message


def _tile_verifier(
    tiles: dict[tuple[int, int], bytes], checkpoint: SignedCheckpoint
) -> LedgerVerifier:
    return LedgerVerifier(
        ENCODER,
        [SIGNER.verifier()],
        [checkpoint],
        mac_key=KEY,
        sealed_tiles={index: data for (level, index), data in tiles.items() if level == 0},
        upper_tiles={ref: data for ref, data in tiles.items() if ref[0] > 0},
    )


def test_a_rewritten_upper_tile_is_named_by_the_positions_under_it() -> None:
    """Proofs are served from the upper tiles: a rewritten entry breaks them silently."""
    rows = _rows()
    tiles, checkpoint = _sealed(rows)
    assert len(tiles[1, 0]) == 2 * 32  # the roots of leaves 0..255 and 256..511
    tiles[1, 0] = tiles[1, 0][:32] + bytes(32)
    verifier = _tile_verifier(tiles, checkpoint)
    verifier.feed(rows)
    report = verifier.finish(_accounts(rows), SIZE)
    assert [(f.kind, f.position) for f in report.findings] == [("tile", 256)]
    assert "level-1 tile 0" in report.findings[0].message


def test_a_changed_row_is_not_blamed_on_the_upper_tiles_above_it() -> None:
    rows = _rows()
    tiles, checkpoint = _sealed(rows)
    rows[300] = {**rows[300], "amount": rows[300]["amount"] + 1}
    verifier = _tile_verifier(tiles, checkpoint)
    verifier.feed(rows)
    report = verifier.finish(_accounts(rows), SIZE)
    assert [(f.kind, f.position) for f in report.findings] == [
        ("changed", 300),
        ("checkpoint", SIZE - 1),
    ]


def _checkpoints_at(rows: list[dict[str, Any]], sizes: set[int]) -> list[SignedCheckpoint]:
    tree = CompactTree()
    checkpoints = []
    for row in rows:
        tree.append(leaf_hash(leaf_of_row(ENCODER, row)))
        if tree.size in sizes:
            note = sign_checkpoint(Checkpoint(SIGNER.name, tree.size, tree.root()), SIGNER)
            checkpoints.append(SignedCheckpoint(tree.size, tree.root(), note))
    return checkpoints


@pytest.mark.parametrize(
    ("listed", "rows_found", "checkpoints_failing"),
    [
        # Row 3 after row 4: position 3 has its placeholder by then.
        ([0, 1, 2, 4, 3], [("deleted", 3), ("reordered", 3)], [4, 5, 99, SIZE - 1]),
        # A second row at position 3: the first one stays the leaf.
        ([0, 1, 2, 3, 4, 3], [("inserted", 3)], []),
    ],
    ids=["late", "repeated"],
)
def test_a_row_fed_after_its_place_leaves_no_checkpoint_unchecked(
    listed: list[int], rows_found: list[tuple[str, int]], checkpoints_failing: list[int]
) -> None:
    """The tree keeps one leaf per position whatever order rows come in (a source can list
    them out of order; a database cannot): each checkpoint is checked at its own size. The
    tree once took such a row as the next leaf, ran a leaf ahead of the positions, and
    passed checkpoints 100 and 700 without checking them."""
    rows = _rows()
    tiles, _ = _sealed(rows)
    verifier = LedgerVerifier(
        ENCODER,
        [SIGNER.verifier()],
        _checkpoints_at(rows, {5, 6, 100, SIZE}),
        mac_key=KEY,
        sealed_tiles={index: data for (level, index), data in tiles.items() if level == 0},
    )
    verifier.feed([rows[n] for n in listed] + rows[5:])
    report = verifier.finish(_accounts(rows), SIZE)
    assert [(f.kind, f.position) for f in report.findings if f.rank == 0] == rows_found
    failing = [f for f in report.findings if f.kind == "checkpoint"]
    assert [f.position for f in failing] == checkpoints_failing
    assert all("no longer hash to the signed root" in f.message for f in failing)
    assert report.leaves == SIZE


def test_a_checkpoint_signed_for_another_log_is_named() -> None:
    """The log's own key signing another origin (a test log sharing the key, say) commits
    this log to nothing, however well its size and root fit."""
    rows = _rows()
    tiles, checkpoint = _sealed(rows)
    note = sign_checkpoint(
        Checkpoint("another.log/ledger", checkpoint.tree_size, checkpoint.root_hash), SIGNER
    )
    verifier = _verifier(tiles, SignedCheckpoint(checkpoint.tree_size, checkpoint.root_hash, note))
    verifier.feed(rows)
    report = verifier.finish(_accounts(rows), SIZE)
    assert [f.kind for f in report.findings] == ["checkpoint"]
    assert "signed for log 'another.log/ledger', not 'openloop.dev/ledger'" in (
        report.findings[0].message
    )
    assert report.checkpoints_verified == 0


def test_verifier_keys_of_two_logs_are_refused() -> None:
    """The keys name the log whose origin every checkpoint must carry: keys of two names
    are the auditor's mistake, refused like a malformed key."""
    other = Signer.from_key(generate_signer_key("another.log/ledger")).verifier()
    with pytest.raises(NoteError, match="name 2 logs"):
        LedgerVerifier(ENCODER, [SIGNER.verifier(), other], [], mac_key=KEY)


@dataclass
class _TileReads:
    """Level-0 tiles read by index, as a database source reads them, each read recorded."""

    tiles: dict[int, bytes]
    reads: list[list[int]] = field(default_factory=list)

    async def leaf_tiles(self, indexes: Sequence[int]) -> dict[int, bytes]:
        self.reads.append(list(indexes))
        return {index: self.tiles[index] for index in indexes if index in self.tiles}


def _tampered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows deleted (100..119), a row repeated (3), two swapped across a tile boundary
    (255, 256) and rows changed in the first and the last tile (1, 690) and under a level-1
    entry (300, not the entry's fault)."""
    listed = [*rows[:5], rows[3], *rows[5:100], *rows[120:]]
    by_position = {row["position"]: i for i, row in enumerate(listed)}
    listed[by_position[255]], listed[by_position[256]] = (
        {**rows[256], "position": 255},
        {**rows[255], "position": 256},
    )
    for position in (1, 300, 690):
        row = listed[by_position[position]]
        listed[by_position[position]] = {**row, "amount": row["amount"] + 1}
    return listed


@pytest.mark.parametrize("window", [1, 2, 3])
@pytest.mark.parametrize("chunk", [1, 100, 300, SIZE + 1])
def test_a_window_of_leaf_tiles_finds_what_all_of_them_find(window: int, chunk: int) -> None:
    """The verifier holds only the level-0 tiles of the rows it is hashing, read in order:
    every finding stays what holding them all gives (a sealed leaf the classifier needs
    after its tile was let go, a level-1 entry checked against the tile below it)."""
    rows = _rows()
    tiles, checkpoint = _sealed(rows)
    listed = _tampered(rows)
    whole = _tile_verifier(tiles, checkpoint)
    whole.feed(listed)
    expected = whole.finish(_accounts(rows), SIZE)
    assert expected.leaf_tiles_held == 3  # all of them, as the verifier once held them
    assert [(f.kind, f.position) for f in expected.findings if f.rank == 0] == [
        ("changed", 1),
        ("inserted", 3),
        ("deleted", 100),
        ("reordered", 255),
        ("reordered", 256),
        ("changed", 300),
        ("changed", 690),
    ]

    reads = _TileReads({index: data for (level, index), data in tiles.items() if level == 0})
    verifier = LedgerVerifier(
        ENCODER,
        [SIGNER.verifier()],
        [checkpoint],
        mac_key=KEY,
        upper_tiles={ref: data for ref, data in tiles.items() if ref[0] > 0},
        leaf_tile_window=window,
    )

    async def feed() -> None:
        for start in range(0, len(listed), chunk):
            await sources.feed(verifier, reads, listed[start : start + chunk])

    asyncio.run(feed())
    report = verifier.finish(_accounts(rows), SIZE)
    assert report.findings == expected.findings
    assert report.leaf_tiles_held <= window
    assert all(len(read) <= window for read in reads.reads)
    read_order = [index for read in reads.reads for index in read]
    assert read_order == sorted(read_order)  # in tile order: each read from the last on
    assert set(read_order) == {0, 1, 2}
