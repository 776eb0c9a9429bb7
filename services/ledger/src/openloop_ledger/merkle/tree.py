"""The sealer's append-only RFC 6962 tree, kept as its right edge only (a compact range).

A tree of ``size`` leaves is the merge of one perfect subtree per set bit of ``size``; those
hashes (largest subtree first) are all the sealer needs to append more leaves and compute
the root, so memory stays at most 64 hashes however large the log grows. Each append reports
the perfect subtrees it completed, which is how the store learns what to write into tiles.

The hot path is plain ``bytes`` and ``hashlib``: the sealer runs it for every transfer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from hashlib import sha256

from openloop_ledger.merkle.hashing import EMPTY_ROOT, HASH_SIZE

NodeSink = Callable[[int, int, bytes], None]
"""Receives ``(level, index, hash)`` for each perfect subtree an append completes."""


class CompactTree:
    """An incremental RFC 6962 tree over leaf hashes that keeps only its right edge.

    ``on_node`` (optional) is called with ``(level, index, hash)`` for every perfect subtree
    that becomes complete, in bottom-up order: first the leaf itself at level 0, then each
    parent it closes. Resume after a restart with ``CompactTree(size, right_edge)`` using the
    values ``size`` and ``right_edge()`` returned before.
    """

    __slots__ = ("_edge", "_on_node", "_size")

    def __init__(
        self,
        size: int = 0,
        right_edge: Sequence[bytes] = (),
        on_node: NodeSink | None = None,
    ) -> None:
        if size < 0:
            raise ValueError(f"tree size {size} is negative")
        if len(right_edge) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} right-edge hashes, "
                f"got {len(right_edge)}"
            )
        for h in right_edge:
            if len(h) != HASH_SIZE:
                raise ValueError(f"right-edge hash is {len(h)} bytes, not {HASH_SIZE}")
        self._size = size
        self._edge = [bytes(h) for h in right_edge]
        self._on_node = on_node

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def right_edge(self) -> list[bytes]:
        """The perfect-subtree hashes of the right edge, largest (leftmost) first.

        They are the hashes of ``proofs.perfect_subtrees(0, size)``, in the same order.
        """
        return list(self._edge)

    def root(self) -> bytes:
        """The RFC 6962 root of the tree as it stands."""
        edge = self._edge
        if not edge:
            return EMPTY_ROOT
        result = edge[-1]
        for h in reversed(edge[:-1]):
            result = sha256(b"\x01" + h + result).digest()
        return result

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash (``hashing.leaf_hash`` of the entry)."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
        size = self._size
        edge = self._edge
        sink = self._on_node
        h = leaf_hash
        if sink is not None:
            sink(0, size, h)
        level = 0
        n = size
        while n & 1:
            h = sha256(b"\x01" + edge.pop() + h).digest()
            level += 1
            n >>= 1
            if sink is not None:
                sink(level, n, h)
        edge.append(h)
        self._size = size + 1

    def extend_concatenated(
        self, leaf_hashes: bytes, on_tile_root: Callable[[int, bytes], None] | None = None
    ) -> None:
        """Append the 32-byte leaf hashes concatenated in ``leaf_hashes``: the verifier's bulk
        path, the same arithmetic as :meth:`append` without a call per leaf.

        ``on_tile_root`` (optional) receives ``(index, hash)`` of each level-8 node completed
        (the root of 256 leaves, an entry of a level-1 tile): the verifier checks the stored
        tiles with them at the cost of one test per leaf, instead of hashing again."""
        if len(leaf_hashes) % HASH_SIZE:
            raise ValueError(f"{len(leaf_hashes)} bytes are not whole {HASH_SIZE}-byte hashes")
        if self._on_node is not None:
            self.extend(
                leaf_hashes[i : i + HASH_SIZE] for i in range(0, len(leaf_hashes), HASH_SIZE)
            )
            return
        edge = self._edge
        pop = edge.pop
        push = edge.append
        size = self._size
        for offset in range(0, len(leaf_hashes), HASH_SIZE):
            h = leaf_hashes[offset : offset + HASH_SIZE]
            n = size
            if n & 255 == 255 and on_tile_root is not None:
                for _ in range(8):
                    h = sha256(b"\x01" + pop() + h).digest()
                on_tile_root(n >> 8, h)
                n >>= 8
            while n & 1:
                h = sha256(b"\x01" + pop() + h).digest()
                n >>= 1
            push(h)
            size += 1
        self._size = size

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes in order."""
        append = self.append
        for h in leaf_hashes:
            append(h)
