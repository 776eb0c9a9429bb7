"""RFC 6962 hashing: the domain-separated SHA-256 hashes of leaves and interior nodes.

Leaves and nodes are hashed with different one-byte prefixes so that no leaf can be passed
off as an interior node (a second-preimage defence). Everything is plain ``bytes`` and
``hashlib`` because the sealer hashes every committed transfer.
"""

from __future__ import annotations

from hashlib import sha256

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = sha256(b"").digest()
"""Root of the empty tree: SHA-256 of the empty string."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf input."""
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return sha256(b"\x01" + left + right).digest()
