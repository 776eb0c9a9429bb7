"""An auditor verifies the mesh's ledger: a payment's transfer is in the signed log,
and the whole database verifies with the mesh's own keys."""

from __future__ import annotations

import asyncio

import grpc

from openloop.ledger.v1 import service_pb2 as ledger_pb2
from openloop_ledger.audit.__main__ import verify
from openloop_ledger.audit.sources import DatabaseSource
from openloop_ledger.merkle.hashing import leaf_hash
from openloop_ledger.merkle.note import Verifier, open_checkpoint
from openloop_ledger.merkle.proofs import verify_inclusion
from tests.e2e.journeys import pay_request


async def test_a_payment_is_provably_in_the_signed_log_and_the_ledger_verifies(platform):
    program = platform.program
    reply = await platform.bank_a.Pay(pay_request(program.citizen, program.small_shop, 1_00))
    transfer_id = f"pay:{reply.payment.name.rsplit('/', 1)[1]}"
    verifier = Verifier.from_key(platform.mesh.ledger_verifier_key())
    proof = None
    for _ in range(100):
        try:
            proof = await platform.ledger.GetInclusionProof(
                ledger_pb2.GetInclusionProofRequest(transfer_id=transfer_id)
            )
            break
        except grpc.aio.AioRpcError as error:  # LEAF_NOT_SEALED until the next checkpoint
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            await asyncio.sleep(0.05)
    assert proof is not None, "no checkpoint covered the payment's transfer within 5 s"
    checkpoint = open_checkpoint(proof.checkpoint.signed_note, verifier)
    verify_inclusion(
        leaf_hash(proof.leaf), proof.leaf_index, checkpoint.size, proof.hashes, checkpoint.root
    )

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
