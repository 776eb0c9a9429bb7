"""An auditor verifies the mesh's ledger: a payment's transfer is in the signed log,
and the whole database verifies with the mesh's own keys. The log is sealed by a process
of its own, as in Kubernetes: payments go on without it and are sealed when it returns."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from openloop.gateway.v1 import resources_pb2
from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop_dev.mesh import SEALER
from openloop_ledger.audit.__main__ import verify
from openloop_ledger.audit.sources import DatabaseSource
from openloop_ledger.merkle.hashing import leaf_hash
from openloop_ledger.merkle.note import Verifier, open_checkpoint
from openloop_ledger.merkle.proofs import verify_inclusion
from tests.e2e.journeys import pay_request, reason_of


def _transfer_id(reply) -> str:
    return f"pay:{reply.payment.name.rsplit('/', 1)[1]}"


async def _assert_proven(platform, transfer_id: str) -> None:
    """The transfer's inclusion proof verifies against a checkpoint signed by the mesh's
    key, once a checkpoint covers it (within 15 s: the sealer may have just restarted)."""
    verifier = Verifier.from_key(platform.mesh.ledger_verifier_key())
    proof = None
    for _ in range(300):
        try:
            proof = await platform.ledger.GetInclusionProof(
                ledger_pb2.GetInclusionProofRequest(transfer_id=transfer_id)
            )
            break
        except grpc.aio.AioRpcError as error:  # LEAF_NOT_SEALED until the next checkpoint
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            await asyncio.sleep(0.05)
    assert proof is not None, "no checkpoint covered the payment's transfer within 15 s"
    checkpoint = open_checkpoint(proof.checkpoint.signed_note, verifier)
    verify_inclusion(
        leaf_hash(proof.leaf), proof.leaf_index, checkpoint.size, proof.hashes, checkpoint.root
    )


async def test_a_payment_is_provably_in_the_signed_log_and_the_ledger_verifies(platform):
    program = platform.program
    reply = await platform.bank_a.Pay(pay_request(program.citizen, program.small_shop, 1_00))
    await _assert_proven(platform, _transfer_id(reply))

    env = platform.mesh.service_env("ledger")
    source = await DatabaseSource.connect(env["OPENLOOP_LEDGER_DATABASE_URL"])
    try:
        report = await verify(
            source, platform.mesh.ledger_verifier_key(), env["OPENLOOP_LEDGER_LEAF_KEY"]
        )
    finally:
        await source.close()
    assert report.ok, report.findings
    assert report.leaves > 0


async def test_payments_go_on_while_the_sealer_is_down_and_are_sealed_when_it_returns(platform):
    program = platform.program
    with platform.mesh.service_stopped(SEALER):
        reply = await platform.bank_a.Pay(pay_request(program.citizen, program.small_shop, 1_00))
        assert reply.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED
        await asyncio.sleep(0.75)  # three of the sealer's intervals: the ledger seals nothing
        with pytest.raises(grpc.aio.AioRpcError) as unsealed:
            await platform.ledger.GetInclusionProof(
                ledger_pb2.GetInclusionProofRequest(transfer_id=_transfer_id(reply))
            )
        assert unsealed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(unsealed.value) == "LEAF_NOT_SEALED"
    await _assert_proven(platform, _transfer_id(reply))
