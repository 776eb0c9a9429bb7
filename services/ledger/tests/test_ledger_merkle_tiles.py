"""C2SP tiles (height 8): layout, writing them from the compact tree, and proofs read from them.

Trees are grown with ``CompactTree`` feeding a ``TileWriter``; the tile rows it flushes are
upserted into a dict that plays the store. Every proof built from those tiles must equal the
one from a full in-memory reference tree written here, and must verify.
"""

from __future__ import annotations

import random

import pytest

from openloop_ledger.merkle import hashing, proofs, tiles
from openloop_ledger.merkle.tiles import TileWriter
from openloop_ledger.merkle.tree import CompactTree


class RefTree:
    """Every perfect node of the tree, per level, with RFC 9162 MTH/PATH/SUBPROOF on top."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.levels = [leaf_hashes]
        row = leaf_hashes
        while len(row) > 1:
            row = [hashing.node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
            self.levels.append(row)

    def mth(self, begin: int, end: int) -> bytes:
        n = end - begin
        if n == 0:
            return hashing.EMPTY_ROOT
        level = n.bit_length() - 1
        if n == 1 << level and begin % n == 0:
            return self.levels[level][begin >> level]
        k = 1
        while k * 2 < n:
            k *= 2
        return hashing.node_hash(self.mth(begin, begin + k), self.mth(begin + k, end))

    def path(self, m: int, begin: int, end: int) -> list[bytes]:
        n = end - begin
        if n == 1:
            return []
        k = 1
        while k * 2 < n:
            k *= 2
        if m < k:
            return [*self.path(m, begin, begin + k), self.mth(begin + k, end)]
        return [*self.path(m - k, begin + k, end), self.mth(begin, begin + k)]

    def subproof(self, m: int, begin: int, end: int, whole: bool) -> list[bytes]:
        n = end - begin
        if m == n:
            return [] if whole else [self.mth(begin, end)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return [*self.subproof(m, begin, begin + k, whole), self.mth(begin + k, end)]
        return [*self.subproof(m - k, begin + k, end, False), self.mth(begin, begin + k)]


def grow(
    leaf_hashes: list[bytes], cuts: list[int], store: dict[tuple[int, int], bytes] | None = None
) -> dict[tuple[int, int], bytes]:
    """Append leaves, flushing tile rows into ``store`` at each cut (and at the end)."""
    store = {} if store is None else store
    writer = TileWriter()
    tree = CompactTree(on_node=writer.add)
    for cut in [*cuts, len(leaf_hashes)]:
        tree.extend(leaf_hashes[tree.size : cut])
        for row in writer.flush():
            store[row.tile_level, row.tile_index] = row.data
    return store


def expected_tiles(ref: RefTree, size: int) -> dict[tuple[int, int], bytes]:
    out: dict[tuple[int, int], bytes] = {}
    tile_level = 0
    while 8 * tile_level < len(ref.levels):
        count = size >> (8 * tile_level)
        row = ref.levels[8 * tile_level][:count]
        for tile_index in range((count + 255) // 256):
            out[tile_level, tile_index] = b"".join(row[tile_index * 256 : (tile_index + 1) * 256])
        tile_level += 1
    return out


def make_leaves(n: int, seed: int) -> list[bytes]:
    return [hashing.leaf_hash(f"{seed}:{i}".encode()) for i in range(n)]


def check_inclusion(store: dict[tuple[int, int], bytes], ref: RefTree, index: int, size: int):
    needed = proofs.inclusion_nodes(index, size)
    fetched = {t: store[t] for t in tiles.tiles_needed(needed)}
    proof = proofs.inclusion_proof(tiles.nodes_from_tiles(fetched), index, size)
    assert proof == ref.path(index, 0, size), (index, size)
    proofs.verify_inclusion(ref.levels[0][index], index, size, proof, ref.mth(0, size))


def check_consistency(store: dict[tuple[int, int], bytes], ref: RefTree, size1: int, size2: int):
    needed = proofs.consistency_nodes(size1, size2)
    fetched = {t: store[t] for t in tiles.tiles_needed(needed)}
    proof = proofs.consistency_proof(tiles.nodes_from_tiles(fetched), size1, size2)
    expected = [] if size1 == size2 else ref.subproof(size1, 0, size2, True)
    assert proof == expected, (size1, size2)
    proofs.verify_consistency(size1, size2, proof, ref.mth(0, size1), ref.mth(0, size2))


# --- layout -----------------------------------------------------------------------------------


def test_tile_of_locates_nodes() -> None:
    assert tiles.tile_of(0, 0) == (0, 0, 0, 0)
    assert tiles.tile_of(0, 300) == (0, 1, 44, 0)
    assert tiles.tile_of(3, 5) == (0, 0, 40, 3)
    assert tiles.tile_of(7, 3) == (0, 1, 128, 7)
    assert tiles.tile_of(8, 2) == (1, 0, 2, 0)
    assert tiles.tile_of(9, 200) == (1, 1, 144, 1)
    assert tiles.tile_of(16, 1) == (2, 0, 1, 0)
    with pytest.raises(ValueError, match="invalid node"):
        tiles.tile_of(-1, 0)


def test_tiles_needed_groups_nodes_by_tile() -> None:
    assert tiles.tiles_needed([]) == set()
    assert tiles.tiles_needed([(0, 1), (0, 255), (1, 3), (7, 1), (0, 256), (8, 0)]) == {
        (0, 0),
        (0, 1),
        (1, 0),
    }


def test_partial_tiles_and_widths_follow_the_spec_example() -> None:
    assert tiles.partial_tiles(0) == []
    assert tiles.partial_tiles(256) == [(1, 0, 1)]
    assert tiles.partial_tiles(70_000) == [(0, 273, 112), (1, 1, 17), (2, 0, 1)]
    assert tiles.tile_width(0, 272, 70_000) == 256
    assert tiles.tile_width(0, 273, 70_000) == 112
    assert tiles.tile_width(0, 274, 70_000) == 0
    assert tiles.tile_width(1, 0, 70_000) == 256
    assert tiles.tile_width(1, 1, 70_000) == 17
    assert tiles.tile_width(2, 0, 70_000) == 1
    assert tiles.tile_width(3, 0, 70_000) == 0


def test_node_from_tile_accepts_bytes_or_hashes_and_rejects_short_tiles() -> None:
    d = make_leaves(300, seed=1)
    ref = RefTree(d)
    tile0 = b"".join(d[:256])
    for level, index in [(0, 5), (1, 7), (3, 31), (7, 0), (7, 1)]:
        expected = ref.levels[level][index]
        assert tiles.node_from_tile(tile0, level, index) == expected
        assert tiles.node_from_tile(d[:256], level, index) == expected
        assert tiles.node_from_tile(bytearray(tile0), level, index) == expected
    assert tiles.node_from_tile(b"".join(d[256:300]), 3, 34) == ref.levels[3][34]
    with pytest.raises(ValueError, match="has 44 hashes"):
        tiles.node_from_tile(b"".join(d[256:300]), 3, 38)
    with pytest.raises(ValueError, match="has 3 hashes"):
        tiles.node_from_tile(d[:3], 2, 0)
    with pytest.raises(ValueError, match="multiple of 32"):
        tiles.node_from_tile(tile0[:-1], 0, 0)


def test_tile_levels_hold_every_node_a_full_tile_builds() -> None:
    leaves = make_leaves(256 * 256 + 5, seed=11)
    ref = RefTree(leaves)
    store = grow(leaves, [])
    for tile_level, tile_index in [(0, 0), (0, 255), (1, 0)]:
        levels = tiles.tile_levels(store[tile_level, tile_index])
        assert len(levels) == 255 * hashing.HASH_SIZE
        for sublevel in range(1, 8):  # level 8 * (tile_level + 1) is a tile entry above
            level = 8 * tile_level + sublevel
            for index in range(tile_index << (8 - sublevel), (tile_index + 1) << (8 - sublevel)):
                location = tiles.tile_of(level, index)
                assert (location.tile_level, location.tile_index) == (tile_level, tile_index)
                assert tiles.node_from_levels(levels, location) == ref.levels[level][index]


def test_tile_levels_are_only_built_for_full_tiles_and_above_them() -> None:
    leaves = make_leaves(300, seed=12)
    store = grow(leaves, [])
    with pytest.raises(ValueError, match="full tile"):
        tiles.tile_levels(store[0, 1])  # 44 hashes: still growing
    levels = tiles.tile_levels(store[0, 0])
    with pytest.raises(ValueError, match="sublevel 0"):
        tiles.node_from_levels(levels, tiles.tile_of(0, 3))


def test_nodes_from_tiles_names_a_missing_tile() -> None:
    node = tiles.nodes_from_tiles({(0, 0): b"\x00" * 32})
    with pytest.raises(KeyError, match=r"tile \(0, 1\)"):
        node(0, 256)


# --- writing tiles and proving from them -----------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 7, 255, 256, 257, 511, 512, 600])
def test_small_trees_every_proof_from_tiles(size: int) -> None:
    rng = random.Random(size)
    d = make_leaves(size, seed=size)
    ref = RefTree(d)
    cuts = sorted(rng.sample(range(size + 1), min(size + 1, 5)))
    store = grow(d, cuts)
    assert store == expected_tiles(ref, size)
    if size == 0:
        assert store == {}
        return
    for index in range(size):
        check_inclusion(store, ref, index, size)
    for size1 in range(1, size + 1):
        check_consistency(store, ref, size1, size)


def test_large_tree_proofs_from_tiles() -> None:
    size = 65536 + 3
    rng = random.Random(65539)
    d = make_leaves(size, seed=2)
    ref = RefTree(d)
    store = grow(d, sorted(rng.sample(range(size), 30)))
    assert store == expected_tiles(ref, size)
    assert {(tl, ti): len(data) // 32 for (tl, ti), data in store.items()} == {
        **{(0, n): 256 for n in range(256)},
        (0, 256): 3,
        **{(1, n): 256 for n in range(1)},
        (2, 0): 1,
    }
    sizes = [1, 2, 255, 256, 257, 65535, 65536, size, *rng.sample(range(1, size), 25)]
    for tree_size in sizes:
        indexes = {
            0,
            tree_size - 1,
            tree_size // 2,
            *rng.sample(range(tree_size), min(8, tree_size)),
        }
        for index in indexes:
            check_inclusion(store, ref, index, tree_size)
        for size1 in {1, tree_size, *rng.sample(range(1, tree_size + 1), min(8, tree_size))}:
            check_consistency(store, ref, size1, tree_size)
            check_consistency(store, ref, size1, size)


def test_store_state_after_each_flush_serves_that_size() -> None:
    rng = random.Random(3)
    d = make_leaves(3000, seed=3)
    ref = RefTree(d)
    writer = TileWriter()
    tree = CompactTree(on_node=writer.add)
    store: dict[tuple[int, int], bytes] = {}
    while tree.size < len(d):
        tree.extend(d[tree.size : tree.size + rng.choice([1, 3, 200, 256, 700])])
        rows = writer.flush()
        assert [(r.tile_level, r.tile_index) for r in rows] == sorted(
            {(r.tile_level, r.tile_index) for r in rows}
        )
        store.update({(r.tile_level, r.tile_index): r.data for r in rows})
        size = tree.size
        assert store == expected_tiles(ref, size)
        assert writer.flush() == []
        node = tiles.nodes_from_tiles(store)
        assert proofs.root(node, size) == tree.root() == ref.mth(0, size)
        check_inclusion(store, ref, rng.randrange(size), size)
        check_consistency(store, ref, rng.randint(1, size), size)


def test_writer_resumes_from_stored_partial_tiles() -> None:
    d = make_leaves(70_000, seed=4)
    ref = RefTree(d)
    full = grow(d, [])
    for cut in [0, 1, 255, 256, 257, 65536, 65537, 69_999]:
        store = grow(d[:cut], [])
        partial = {tl: store[tl, ti] for tl, ti, _ in tiles.partial_tiles(cut)}
        writer = TileWriter(cut, partial)
        edge = [ref.levels[lv][ix] for lv, ix in proofs.perfect_subtrees(0, cut)]
        tree = CompactTree(cut, edge, on_node=writer.add)
        tree.extend(d[cut:])
        store.update({(r.tile_level, r.tile_index): r.data for r in writer.flush()})
        assert store == full, cut
        assert tree.root() == ref.mth(0, len(d))


def test_writer_rejects_inconsistent_input() -> None:
    h = hashing.leaf_hash(b"x")
    with pytest.raises(ValueError, match="must be 96 bytes"):
        TileWriter(3, {})
    with pytest.raises(ValueError, match="must be 96 bytes"):
        TileWriter(3, {0: h * 2})
    with pytest.raises(ValueError, match="no partial tile"):
        TileWriter(3, {0: h * 3, 1: h})
    with pytest.raises(ValueError, match="no partial tile"):
        TileWriter(0, {0: h})
    with pytest.raises(ValueError, match="must be 0 bytes"):
        TileWriter(256, {0: h})
    writer = TileWriter(3, {0: h * 3})
    with pytest.raises(ValueError, match="expected node 3"):
        writer.add(0, 4, h)
    with pytest.raises(ValueError, match="arrived before"):
        writer.add(16, 0, h)
    with pytest.raises(ValueError, match="not 32"):
        writer.add(0, 3, h[:5])
    writer.add(1, 1, h)
    assert writer.flush() == []
    writer.add(0, 3, h)
    assert writer.flush() == [(0, 0, h * 4)]
