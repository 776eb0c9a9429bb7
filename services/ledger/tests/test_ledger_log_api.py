"""Signed checkpoints and Merkle proofs through a real server, checked as an auditor would."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

import grpc
import pytest

from openloop.ledger.v1 import resources_pb2, service_pb2
from openloop_ledger.config import DEVELOPMENT_LEAF_KEY, DEVELOPMENT_LOG_VERIFIER_KEY
from openloop_ledger.leaf import LeafEncoder, decode_fixed
from openloop_ledger.merkle.hashing import leaf_hash
from openloop_ledger.merkle.note import Verifier, open_checkpoint
from openloop_ledger.merkle.proofs import ProofError, verify_consistency, verify_inclusion
from openloop_ledger.model import Transfer, TransferFlags, TransferSpec
from openloop_runtime.errors import error_info_of
from services.ledger.tests.ledger_helpers import (
    T,
    checkpoint_covering,
    new_id,
    open_account,
    submit,
    transfer,
)

if TYPE_CHECKING:
    from services.ledger.tests.ledger_helpers import Stub

VERIFIER = Verifier.from_key(DEVELOPMENT_LOG_VERIFIER_KEY)


async def _committed(ledger: Stub, count: int) -> list[resources_pb2.Transfer]:
    a, b = await open_account(ledger, "a"), await open_account(ledger, "b")
    moves = [transfer(a, b, n + 1, user_data="payments/p-9") for n in range(count)]
    assert await submit(ledger, *moves) == [T.CREATE_TRANSFER_RESULT_OK] * count
    looked = await ledger.LookupTransfers(
        service_pb2.LookupTransfersRequest(ids=[m.id for m in moves])
    )
    return list(looked.transfers)


async def test_a_checkpoint_is_signed_by_the_log_key(ledger: Stub) -> None:
    [recorded] = await _committed(ledger, 1)
    checkpoint = await checkpoint_covering(ledger, recorded.position + 1)
    body = open_checkpoint(checkpoint.signed_note, VERIFIER, origin="openloop.dev/ledger")
    assert (body.size, body.root) == (checkpoint.tree_size, checkpoint.root_hash)
    forged = checkpoint.signed_note.replace(
        f"\n{checkpoint.tree_size}\n", f"\n{checkpoint.tree_size + 1}\n", 1
    )
    assert forged != checkpoint.signed_note
    with pytest.raises(ValueError, match="signature"):
        open_checkpoint(forged, VERIFIER)


async def test_an_inclusion_proof_ties_a_transfer_to_the_signed_root(ledger: Stub) -> None:
    recorded = await _committed(ledger, 5)
    target = recorded[2]
    checkpoint = await checkpoint_covering(ledger, recorded[-1].position + 1)
    proof = await ledger.GetInclusionProof(
        service_pb2.GetInclusionProofRequest(transfer_id=target.id)
    )
    assert proof.leaf_index == target.position
    assert proof.checkpoint.tree_size >= checkpoint.tree_size
    root = open_checkpoint(proof.checkpoint.signed_note, VERIFIER).root
    verify_inclusion(
        leaf_hash(proof.leaf), proof.leaf_index, proof.checkpoint.tree_size, proof.hashes, root
    )
    # The leaf is the transfer as recorded: an auditor with the leaf key recomputes it.
    spec = TransferSpec(
        id=target.id,
        debit_account_id=target.debit_account_id,
        credit_account_id=target.credit_account_id,
        amount=target.amount,
        ledger=target.ledger,
        code=target.code,
        user_data=target.user_data,
        flags=TransferFlags(),
    )
    expected = LeafEncoder(DEVELOPMENT_LEAF_KEY.encode()).encode(
        Transfer(spec, target.create_time.ToDatetime(tzinfo=UTC), target.position)
    )
    assert proof.leaf == expected
    assert decode_fixed(proof.leaf)["amount"] == target.amount
    assert target.debit_account_id.encode() not in proof.leaf
    assert b"payments/p-9" not in proof.leaf
    altered = bytearray(proof.leaf)
    altered[-40] ^= 1
    with pytest.raises(ProofError):
        verify_inclusion(
            leaf_hash(bytes(altered)),
            proof.leaf_index,
            proof.checkpoint.tree_size,
            proof.hashes,
            root,
        )
    by_index = await ledger.GetInclusionProof(
        service_pb2.GetInclusionProofRequest(
            leaf_index=target.position, tree_size=proof.checkpoint.tree_size
        )
    )
    assert list(by_index.hashes) == list(proof.hashes)


async def test_a_consistency_proof_links_two_checkpoints(ledger: Stub) -> None:
    first_batch = await _committed(ledger, 3)
    first = await checkpoint_covering(ledger, first_batch[-1].position + 1)
    second_batch = await _committed(ledger, 4)
    second = await checkpoint_covering(ledger, second_batch[-1].position + 1)
    proof = await ledger.GetConsistencyProof(
        service_pb2.GetConsistencyProofRequest(
            first_tree_size=first.tree_size, second_tree_size=second.tree_size
        )
    )
    verify_consistency(
        first.tree_size, second.tree_size, proof.hashes, first.root_hash, second.root_hash
    )
    assert proof.first.root_hash == first.root_hash


async def _error(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    info = error_info_of(caught.value)
    assert info is not None
    return caught.value.code(), info.reason


async def test_proof_requests_that_cannot_be_answered_say_why(ledger: Stub) -> None:
    [recorded] = await _committed(ledger, 1)
    checkpoint = await checkpoint_covering(ledger, recorded.position + 1)
    unknown = ledger.GetInclusionProof(
        service_pb2.GetInclusionProofRequest(transfer_id=new_id("never"))
    )
    assert await _error(unknown) == (grpc.StatusCode.NOT_FOUND, "TRANSFER_NOT_FOUND")
    no_size = ledger.GetCheckpoint(
        service_pb2.GetCheckpointRequest(tree_size=checkpoint.tree_size + 10_000)
    )
    assert await _error(no_size) == (grpc.StatusCode.NOT_FOUND, "CHECKPOINT_NOT_FOUND")
    too_small = ledger.GetInclusionProof(
        service_pb2.GetInclusionProofRequest(
            leaf_index=checkpoint.tree_size, tree_size=checkpoint.tree_size
        )
    )
    assert await _error(too_small) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    empty = ledger.GetConsistencyProof(service_pb2.GetConsistencyProofRequest())
    assert await _error(empty) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    no_leaf = ledger.GetInclusionProof(service_pb2.GetInclusionProofRequest())
    assert await _error(no_leaf) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")


async def test_sizes_past_a_signed_64_bit_integer_are_invalid(ledger: Stub) -> None:
    huge = 2**64 - 1
    calls = [
        ledger.GetCheckpoint(service_pb2.GetCheckpointRequest(tree_size=huge)),
        ledger.GetInclusionProof(service_pb2.GetInclusionProofRequest(leaf_index=huge)),
        ledger.GetConsistencyProof(
            service_pb2.GetConsistencyProofRequest(first_tree_size=1, second_tree_size=huge)
        ),
    ]
    for call in calls:
        assert await _error(call) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    stream = ledger.WatchJournal(service_pb2.WatchJournalRequest(start_position=huge))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stream:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
