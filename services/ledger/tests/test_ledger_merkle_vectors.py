"""The Merkle verifiers and hashing against the RFC 6962 vectors (transparency-dev/merkle).

Every file under inclusion/ and consistency/ is one case: a proof the verifier must accept,
or a tampered one (``wantErr``) it must reject. roots.json gives the root of every prefix of
eight leaf inputs. The vectors are test data kept in the repository (``vectors/rfc6962``, a
copy of the shared set with its README and licence note), so a clean clone runs every one;
a test checks the copy still matches the shared set wherever that is present.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from openloop_ledger.merkle import hashing
from openloop_ledger.merkle.proofs import ProofError, verify_consistency, verify_inclusion
from openloop_ledger.merkle.tree import CompactTree

VECTORS = Path(__file__).parent / "vectors" / "rfc6962"
SHARED = (Path(__file__).parents[3] / ".." / "shared" / "vectors" / "rfc6962").resolve()


def _files(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


INCLUSION = _files("inclusion")
CONSISTENCY = _files("consistency")


def _params(files: list[Path]) -> list[Any]:
    return [pytest.param(f, id=str(f.relative_to(VECTORS))) for f in files]


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_kept_copy_matches_the_shared_vectors() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"no shared vectors at {SHARED} to compare the kept copy with")
    shared = {p.relative_to(SHARED): p.read_bytes() for p in SHARED.rglob("*") if p.is_file()}
    kept = {p.relative_to(VECTORS): p.read_bytes() for p in VECTORS.rglob("*") if p.is_file()}
    assert kept == shared


def test_every_vector_file_is_collected() -> None:
    assert len(INCLUSION) + len(CONSISTENCY) >= 190
    assert len(INCLUSION) >= 90
    assert len(CONSISTENCY) >= 90


@pytest.mark.parametrize("path", _params(INCLUSION))
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    proof = [_b64(p) for p in case["proof"] or []]
    args = (_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _params(CONSISTENCY))
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    proof = [_b64(p) for p in case["proof"] or []]
    args = (case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_roots_of_every_prefix() -> None:
    data = _load(VECTORS / "roots.json")
    leaves = [hashing.leaf_hash(bytes.fromhex(x)) for x in data["leaf_inputs_hex"]]
    expected = [bytes.fromhex(x) for x in data["root_by_tree_size_hex"]]
    assert len(expected) == len(leaves) + 1
    tree = CompactTree()
    assert tree.root() == expected[0] == hashing.EMPTY_ROOT
    for n, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        assert tree.root() == expected[n], f"root of the first {n} leaves"
