"""Pure Merkle-log primitives for the ledger's transparency log.

Every committed transfer becomes a leaf of an RFC 6962 / RFC 9162 Merkle tree. The modules
here hold only the arithmetic and formats, with no database or network code:

- ``hashing``: leaf and interior node hashes;
- ``proofs``: which perfect subtrees a proof needs, proof generation and verification;
- ``tree``: the append-only compact tree the sealer feeds, one leaf at a time;
- ``tiles``: the C2SP tlog-tiles layout the store persists node hashes in;
- ``note``: C2SP signed-note checkpoints signed with Ed25519.
"""
