"""RFC 6962 hashing, proof generation and verification, and the compact tree.

Generation is checked against a literal transcription of the RFC 9162 MTH / PATH / SUBPROOF
definitions over a list of leaves, written here independently of the code under test.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from openloop_ledger.merkle import hashing, proofs
from openloop_ledger.merkle.proofs import ProofError
from openloop_ledger.merkle.tree import CompactTree

# --- reference: RFC 9162 section 2.1 definitions, verbatim and slow ----------------------------


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return d[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def leaves(n: int, seed: int = 0) -> list[bytes]:
    return [hashing.leaf_hash(f"entry-{seed}-{i}".encode()) for i in range(n)]


def perfect_nodes(d: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every perfect subtree hash of the tree over ``d``, keyed (level, index)."""
    out = {(0, i): h for i, h in enumerate(d)}
    level, row = 0, d
    while len(row) > 1:
        row = [hashing.node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        level += 1
        out.update({(level, i): h for i, h in enumerate(row)})
    return out


class Collector:
    """An ``on_node`` sink that keeps every (level, index, hash) it is given."""

    def __init__(self) -> None:
        self.nodes: list[tuple[int, int, bytes]] = []

    def __call__(self, level: int, index: int, node_hash: bytes) -> None:
        self.nodes.append((level, index, node_hash))


class Recorder:
    """A NodeFn over a full node table that records which nodes were asked for."""

    def __init__(self, d: list[bytes]) -> None:
        self.table = perfect_nodes(d)
        self.calls: list[tuple[int, int]] = []

    def __call__(self, level: int, index: int) -> bytes:
        self.calls.append((level, index))
        return self.table[level, index]


# --- hashing ----------------------------------------------------------------------------------


def test_hashing_constants_and_domain_separation() -> None:
    assert hashing.HASH_SIZE == 32
    assert hashing.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert hashing.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    left, right = hashing.leaf_hash(b"a"), hashing.leaf_hash(b"b")
    assert hashing.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert hashing.node_hash(left, right) != hashing.node_hash(right, left)
    assert hashing.leaf_hash(left + right) != hashing.node_hash(left, right)


# --- generation -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(70))
def test_root_matches_reference(size: int) -> None:
    d = leaves(size)
    assert proofs.root(Recorder(d), size) == ref_mth(d)


def test_inclusion_proofs_match_reference_and_verify() -> None:
    for size in range(1, 41):
        d = leaves(size, seed=size)
        root = ref_mth(d)
        for index in range(size):
            node = Recorder(d)
            proof = proofs.inclusion_proof(node, index, size)
            assert proof == ref_path(index, d), (index, size)
            assert node.calls == proofs.inclusion_nodes(index, size)
            proofs.verify_inclusion(d[index], index, size, proof, root)
            assert proofs.root_from_inclusion_proof(d[index], index, size, proof) == root


def test_consistency_proofs_match_reference_and_verify() -> None:
    d = leaves(40, seed=7)
    for size2 in range(1, 41):
        root2 = ref_mth(d[:size2])
        for size1 in range(1, size2 + 1):
            node = Recorder(d[:size2])
            proof = proofs.consistency_proof(node, size1, size2)
            expected = [] if size1 == size2 else ref_subproof(size1, d[:size2], True)
            assert proof == expected, (size1, size2)
            assert node.calls == proofs.consistency_nodes(size1, size2)
            proofs.verify_consistency(size1, size2, proof, ref_mth(d[:size1]), root2)


def test_proofs_from_node_dicts_agree_with_callables() -> None:
    rng = random.Random(11)
    d = leaves(3000, seed=3)
    table = perfect_nodes(d)
    for _ in range(200):
        size = rng.randint(1, len(d))
        index = rng.randrange(size)
        needed = proofs.inclusion_nodes(index, size)
        assert len(set(needed)) == len(needed)
        fetched = {ref: table[ref] for ref in needed}
        proof = proofs.inclusion_proof_from_nodes(fetched, index, size)
        assert proof == proofs.inclusion_proof(lambda lv, ix: table[lv, ix], index, size)
        proofs.verify_inclusion(d[index], index, size, proof, ref_mth(d[:size]))

        size1 = rng.randint(1, size)
        needed = proofs.consistency_nodes(size1, size)
        fetched = {ref: table[ref] for ref in needed}
        proof = proofs.consistency_proof_from_nodes(fetched, size1, size)
        assert proof == proofs.consistency_proof(lambda lv, ix: table[lv, ix], size1, size)
        proofs.verify_consistency(size1, size, proof, ref_mth(d[:size1]), ref_mth(d[:size]))


def test_needed_nodes_are_perfect_subtrees_inside_the_tree() -> None:
    for size in range(1, 130):
        for index in range(0, size, 7):
            for level, node_index in proofs.inclusion_nodes(index, size):
                assert (node_index + 1) << level <= size
        for size1 in range(1, size + 1, 5):
            for level, node_index in proofs.consistency_nodes(size1, size):
                assert (node_index + 1) << level <= size


def test_missing_node_in_dict_is_named() -> None:
    d = leaves(5)
    table = perfect_nodes(d)
    needed = proofs.inclusion_nodes(0, 5)
    fetched = {ref: table[ref] for ref in needed[:-1]}
    with pytest.raises(KeyError, match="was not supplied"):
        proofs.inclusion_proof_from_nodes(fetched, 0, 5)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (5, 5), (-1, 3), (0, -1)])
def test_inclusion_generation_rejects_out_of_range(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        proofs.inclusion_nodes(index, size)
    with pytest.raises(ValueError, match="out of range"):
        proofs.inclusion_proof(Recorder(leaves(3)), index, size)


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 4), (5, 4), (2, 1), (-1, 3)])
def test_consistency_generation_rejects_out_of_range(size1: int, size2: int) -> None:
    with pytest.raises(ValueError, match="size1"):
        proofs.consistency_nodes(size1, size2)
    with pytest.raises(ValueError, match="size1"):
        proofs.consistency_proof(Recorder(leaves(5)), size1, size2)


def test_equal_sizes_give_an_empty_consistency_proof() -> None:
    assert proofs.consistency_nodes(9, 9) == []
    assert proofs.consistency_proof(Recorder(leaves(9)), 9, 9) == []


def test_perfect_subtrees_decomposition() -> None:
    assert proofs.perfect_subtrees(0, 0) == []
    assert proofs.perfect_subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert proofs.perfect_subtrees(6, 16) == [(1, 3), (3, 1)]
    for size in range(300):
        subtrees = proofs.perfect_subtrees(0, size)
        assert [level for level, _ in subtrees] == [
            b for b in reversed(range(size.bit_length())) if size >> b & 1
        ]
        covered = [
            i for level, index in subtrees for i in range(index << level, (index + 1) << level)
        ]
        assert covered == list(range(size))


def test_subtree_root_rejects_ranges_that_are_not_rfc_subtrees() -> None:
    d = leaves(40)
    node = Recorder(d)
    assert proofs.subtree_root(node, 4, 7) == ref_mth(d[4:7])
    assert proofs.subtree_root(node, 1, 3) == ref_mth(d[1:3])
    for begin, end in [(1, 4), (2, 7), (3, 3), (5, 4), (-1, 2), (4, 17)]:
        with pytest.raises(ValueError, match="subtree"):
            proofs.subtree_root(node, begin, end)
    accepted = 0
    for begin in range(40):
        for end in range(begin + 1, 41):
            try:
                value = proofs.subtree_root(node, begin, end)
            except ValueError:
                continue
            accepted += 1
            assert value == ref_mth(d[begin:end]), (begin, end)
    assert accepted > 200


# --- verification: rejections -----------------------------------------------------------------


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def test_inclusion_verification_rejects_tampering() -> None:
    rng = random.Random(5)
    d = leaves(300, seed=9)
    table = perfect_nodes(d)
    for _ in range(60):
        size = rng.randint(2, len(d))
        index = rng.randrange(size)
        root = ref_mth(d[:size])
        proof = proofs.inclusion_proof(lambda lv, ix: table[lv, ix], index, size)
        leaf = d[index]
        bad_cases = [
            (leaf, index, size, proof, _flip(root, rng.randrange(256))),
            (_flip(leaf, rng.randrange(256)), index, size, proof, root),
            (leaf, index, size, [*proof, proof[0]], root),
            (leaf, index, size, proof[:-1], root),
            (leaf, index, size, [b"", *proof], root),
            (leaf, index, size, proof, root[:31]),
            (leaf[:31], index, size, proof, root),
            (leaf, size, size, proof, root),
            (leaf, index, size * 2, proof, root),
        ]
        if index + 1 < size:
            bad_cases.append((leaf, index + 1, size, proof, root))
        for i in range(len(proof)):
            tampered = list(proof)
            tampered[i] = _flip(tampered[i], rng.randrange(256))
            bad_cases.append((leaf, index, size, tampered, root))
        for case in bad_cases:
            with pytest.raises(ProofError):
                proofs.verify_inclusion(*case)


def test_consistency_verification_rejects_tampering() -> None:
    rng = random.Random(6)
    d = leaves(300, seed=4)
    table = perfect_nodes(d)
    for _ in range(60):
        size2 = rng.randint(2, len(d))
        size1 = rng.randint(1, size2 - 1)
        root1, root2 = ref_mth(d[:size1]), ref_mth(d[:size2])
        proof = proofs.consistency_proof(lambda lv, ix: table[lv, ix], size1, size2)
        bad_cases = [
            (size1, size2, proof, _flip(root1, rng.randrange(256)), root2),
            (size1, size2, proof, root1, _flip(root2, rng.randrange(256))),
            (size1, size2, proof, root2, root1),
            (size1, size2, [*proof, proof[0]], root1, root2),
            (size1, size2, proof[:-1], root1, root2),
            (size1, size2, [*proof, b""], root1, root2),
            (size1, size2, [], root1, root2),
            (size2, size1, proof, root1, root2),
            (0, size2, proof, hashing.EMPTY_ROOT, root2),
            (size1, size2, proof, root1[:31], root2),
        ]
        for i in range(len(proof)):
            tampered = list(proof)
            tampered[i] = _flip(tampered[i], rng.randrange(256))
            bad_cases.append((size1, size2, tampered, root1, root2))
        for case in bad_cases:
            with pytest.raises(ProofError):
                proofs.verify_consistency(*case)


def test_consistency_from_the_empty_tree_is_rejected() -> None:
    with pytest.raises(ProofError, match="empty tree"):
        proofs.verify_consistency(0, 0, [], hashing.EMPTY_ROOT, hashing.EMPTY_ROOT)
    with pytest.raises(ProofError, match="empty tree"):
        proofs.verify_consistency(0, 3, [], hashing.EMPTY_ROOT, ref_mth(leaves(3)))


def test_equal_sizes_need_equal_roots_and_no_proof() -> None:
    root = ref_mth(leaves(6))
    proofs.verify_consistency(6, 6, [], root, root)
    with pytest.raises(ProofError, match="roots differ"):
        proofs.verify_consistency(6, 6, [], root, _flip(root, 0))
    with pytest.raises(ProofError, match="proof has 1"):
        proofs.verify_consistency(6, 6, [root], root, root)


# --- compact tree -----------------------------------------------------------------------------


def test_compact_tree_root_matches_proofs_root_at_random_sizes() -> None:
    rng = random.Random(2)
    d = leaves(5000, seed=1)
    table = perfect_nodes(d)
    checkpoints = sorted({0, 1, 2, 3, 255, 256, 257, len(d), *rng.sample(range(len(d)), 40)})
    tree = CompactTree()
    for size in checkpoints:
        tree.extend(d[tree.size : size])
        assert tree.size == size
        assert tree.root() == proofs.root(lambda lv, ix: table[lv, ix], size)
    assert tree.root() == ref_mth(d)


def test_compact_tree_reports_every_perfect_node_once() -> None:
    d = leaves(777, seed=5)
    collector = Collector()
    emitted = collector.nodes
    tree = CompactTree(on_node=collector)
    tree.append(d[0])
    assert emitted == [(0, 0, d[0])]
    tree.append(d[1])
    assert emitted[1:] == [(0, 1, d[1]), (1, 0, hashing.node_hash(d[0], d[1]))]
    tree.extend(d[2:])
    table = perfect_nodes(d)
    assert len(emitted) == len(table)
    assert {(lv, ix): h for lv, ix, h in emitted} == table


def test_compact_tree_resumes_from_its_right_edge() -> None:
    d = leaves(1100, seed=8)
    table = perfect_nodes(d)
    for cut in [0, 1, 5, 64, 255, 256, 257, 1023, 1024, 1099]:
        first = CompactTree()
        first.extend(d[:cut])
        edge = first.right_edge()
        assert edge == [table[ref] for ref in proofs.perfect_subtrees(0, cut)]
        collector = Collector()
        emitted = collector.nodes
        resumed = CompactTree(cut, edge, on_node=collector)
        assert resumed.root() == first.root()
        resumed.extend(d[cut:])
        assert resumed.root() == ref_mth(d)
        assert all(table[lv, ix] == h for lv, ix, h in emitted)
        assert len(emitted) == sum(1 for lv, ix in table if (ix + 1) << lv > cut)


def test_compact_tree_rejects_bad_state_and_leaves() -> None:
    h = hashing.leaf_hash(b"x")
    with pytest.raises(ValueError, match="right-edge hashes"):
        CompactTree(3, [h])
    with pytest.raises(ValueError, match="right-edge hashes"):
        CompactTree(0, [h])
    with pytest.raises(ValueError, match="not 32"):
        CompactTree(1, [h[:31]])
    with pytest.raises(ValueError, match="negative"):
        CompactTree(-1)
    tree = CompactTree()
    with pytest.raises(ValueError, match="not 32"):
        tree.append(b"short")
    assert tree.size == 0
    assert tree.root() == hashing.EMPTY_ROOT
