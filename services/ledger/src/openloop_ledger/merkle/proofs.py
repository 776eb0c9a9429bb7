"""RFC 9162 inclusion and consistency proofs: which nodes they need, generation, verification.

The store keeps only *perfect* subtree hashes (in tiles); every other hash a proof needs is
the root of an imperfect right-edge subtree, built here by merging perfect subtrees. A node is
named by ``(level, index)``: level 0 holds the leaf hashes and node ``(level, index)`` covers
leaves ``[index << level, (index + 1) << level)``.

Generation comes in two steps so the store can do its I/O in one round trip: first ask which
perfect nodes a proof needs (``inclusion_nodes`` / ``consistency_nodes``), fetch them, then
build the proof (``inclusion_proof`` / ``consistency_proof`` with a callable, or the
``*_from_nodes`` variants with a mapping). The callable variants call it for exactly those
nodes, so both paths always agree.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2, plus two edge rules that the
project's test vectors require: every hashed value must be 32 bytes, and a consistency proof
from the empty tree (``size1 == 0``) proves nothing and is rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256

from openloop_ledger.merkle.hashing import EMPTY_ROOT, HASH_SIZE

NodeRef = tuple[int, int]
"""A perfect subtree as ``(level, index)``."""

NodeFn = Callable[[int, int], bytes]
"""Returns the hash of the perfect subtree ``(level, index)``."""


class ProofError(ValueError):
    """A proof, or the hashes and sizes it is checked against, failed verification."""


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(begin: int, end: int) -> list[NodeRef]:
    """The maximal perfect subtrees covering leaves ``[begin, end)``, left to right."""
    if begin < 0 or end < begin:
        raise ValueError(f"invalid leaf range [{begin}, {end})")
    out: list[NodeRef] = []
    pos = begin
    while pos < end:
        level = (end - pos).bit_length() - 1
        if pos:
            level = min(level, (pos & -pos).bit_length() - 1)
        out.append((level, pos >> level))
        pos += 1 << level
    return out


def _check_subtree_range(begin: int, end: int) -> None:
    if begin < 0 or end <= begin:
        raise ValueError(f"subtree range [{begin}, {end}) is empty or negative")
    n = end - begin
    if n > 1 and begin % _split(n):
        raise ValueError(f"[{begin}, {end}) is not an RFC 6962 subtree: begin is misaligned")


def _merge(hashes: Sequence[bytes]) -> bytes:
    """Fold perfect-subtree hashes (left to right) into one root, merging right to left."""
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = sha256(b"\x01" + h + result).digest()
    return result


def subtree_root(node: NodeFn, begin: int, end: int) -> bytes:
    """MTH of leaves ``[begin, end)``, built only from perfect-subtree hashes.

    The range must be an RFC 6962 subtree: ``begin`` aligned to the largest power of two
    below ``end - begin`` (every range that appears in a proof is).
    """
    _check_subtree_range(begin, end)
    return _merge([node(level, index) for level, index in perfect_subtrees(begin, end)])


def root(node: NodeFn, size: int) -> bytes:
    """Root of the tree of ``size`` leaves (``EMPTY_ROOT`` for size 0)."""
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    return subtree_root(node, 0, size) if size else EMPTY_ROOT


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges of the RFC 9162 PATH(index, D[0:size]) entries, bottom to top."""
    if size <= 0 or not 0 <= index < size:
        raise ValueError(f"leaf index {index} is out of range for tree size {size}")
    ranges: list[tuple[int, int]] = []
    begin, end = 0, size
    while end - begin > 1:
        mid = begin + _split(end - begin)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            begin = mid
    ranges.reverse()
    return ranges


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges of the RFC 9162 PROOF(size1, D[0:size2]) entries, bottom to top."""
    if size1 <= 0:
        raise ValueError(f"size1 must be positive for a consistency proof, got {size1}")
    if size1 > size2:
        raise ValueError(f"size1 ({size1}) is greater than size2 ({size2})")
    ranges: list[tuple[int, int]] = []
    if size1 == size2:
        return ranges
    begin, end, m, whole_old_tree = 0, size2, size1, True
    while end - begin != m:
        mid = begin + _split(end - begin)
        if m <= mid - begin:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            m -= mid - begin
            begin = mid
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((begin, end))
    ranges.reverse()
    return ranges


def _nodes_of(ranges: Sequence[tuple[int, int]]) -> list[NodeRef]:
    return [ref for begin, end in ranges for ref in perfect_subtrees(begin, end)]


def inclusion_nodes(index: int, size: int) -> list[NodeRef]:
    """The perfect subtrees whose hashes an inclusion proof for ``index`` in ``size`` needs."""
    return _nodes_of(_inclusion_ranges(index, size))


def consistency_nodes(size1: int, size2: int) -> list[NodeRef]:
    """The perfect subtrees whose hashes a consistency proof from ``size1`` to ``size2`` needs."""
    return _nodes_of(_consistency_ranges(size1, size2))


def _build(node: NodeFn, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    return [subtree_root(node, begin, end) for begin, end in ranges]


def inclusion_proof(node: NodeFn, index: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof (PATH) of leaf ``index`` in the tree of ``size``, bottom up.

    Calls ``node`` once for each entry of ``inclusion_nodes(index, size)`` and nothing else.
    """
    return _build(node, _inclusion_ranges(index, size))


def consistency_proof(node: NodeFn, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 consistency proof (PROOF) from tree ``size1`` to ``size2``, bottom up.

    Empty when the sizes are equal. Calls ``node`` once for each entry of
    ``consistency_nodes(size1, size2)`` and nothing else.
    """
    return _build(node, _consistency_ranges(size1, size2))


def lookup(hashes: Mapping[NodeRef, bytes]) -> NodeFn:
    """A ``NodeFn`` over fetched hashes that names the missing node if one is absent."""

    def node(level: int, index: int) -> bytes:
        try:
            return hashes[level, index]
        except KeyError:
            raise KeyError(
                f"hash of node (level={level}, index={index}) was not supplied"
            ) from None

    return node


def inclusion_proof_from_nodes(
    hashes: Mapping[NodeRef, bytes], index: int, size: int
) -> list[bytes]:
    """``inclusion_proof`` from the hashes of ``inclusion_nodes(index, size)``."""
    return inclusion_proof(lookup(hashes), index, size)


def consistency_proof_from_nodes(
    hashes: Mapping[NodeRef, bytes], size1: int, size2: int
) -> list[bytes]:
    """``consistency_proof`` from the hashes of ``consistency_nodes(size1, size2)``."""
    return consistency_proof(lookup(hashes), size1, size2)


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, item in enumerate(proof):
        _check_hash(f"proof[{i}]", item)


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for ``leaf_hash`` at ``index`` in a tree of ``size``.

    Raises ``ProofError`` if the arguments are out of range, any hash is not 32 bytes, or the
    proof has the wrong length for that index and size.
    """
    if index < 0 or size < 0:
        raise ProofError(f"negative leaf index {index} or tree size {size}")
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_proof_hashes(proof)
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is too short ({len(proof)} hashes)")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``size`` with ``root``.

    Raises ``ProofError`` with the reason on any failure.
    """
    _check_hash("root", root)
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def _roots_from_consistency_path(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """RFC 9162 2.1.4.2 steps 2-7 for ``0 < size1 < size2``: the two roots the proof implies."""
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            fr = sha256(b"\x01" + c + fr).digest()
            sr = sha256(b"\x01" + c + sr).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof is too short ({len(proof)} hashes)")
    return fr, sr


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that ``proof`` shows tree ``size1`` with ``root1`` is a prefix of ``size2``/``root2``.

    Raises ``ProofError`` with the reason on any failure. Equal sizes need an empty proof and
    identical roots (nothing is hashed then, so the roots are only compared). A proof from the
    empty tree is rejected: it would accept any ``root2``, so it proves nothing.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"negative tree size {size1} or {size2}")
    if size1 > size2:
        raise ProofError(f"size1 ({size1}) is greater than size2 ({size2})")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree (size1 = 0) proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError(f"sizes are equal but the proof has {len(proof)} hashes")
        if root1 != root2:
            raise ProofError("sizes are equal but the roots differ")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    _check_proof_hashes(proof)
    fr, sr = _roots_from_consistency_path(size1, size2, proof, root1)
    if fr != root1:
        raise ProofError("consistency proof does not lead to root1")
    if sr != root2:
        raise ProofError("consistency proof does not lead to root2")
