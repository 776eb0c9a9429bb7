"""The sealer as a process of its own (``python -m openloop_ledger seal``), as Kubernetes runs
it: a ledger server started with ``sealer_in_process=False`` publishes no checkpoint, the
sealer process seals what the server commits (it hears of no commit, so it looks every
interval), serves health and nothing else, stops cleanly on SIGTERM, and a standby takes
over when the leader is killed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest
from pydantic import SecretStr

from openloop.ledger.v1 import service_pb2, service_pb2_grpc
from openloop_ledger.config import DEVELOPMENT_LOG_VERIFIER_KEY, LedgerSettings
from openloop_ledger.merkle.hashing import leaf_hash
from openloop_ledger.merkle.note import Verifier, generate_signer_key, open_checkpoint
from openloop_ledger.merkle.proofs import verify_inclusion
from openloop_runtime.errors import error_info_of
from services.ledger.tests.ledger_helpers import (
    commit_transfers,
    sealed_through,
)
from services.ledger.tests.ledger_process import LedgerProcess

if TYPE_CHECKING:
    from services.ledger.tests.ledger_helpers import Stub

VERIFIER = Verifier.from_key(DEVELOPMENT_LOG_VERIFIER_KEY)
SEALER_SETTINGS = {"OPENLOOP_LEDGER_CHECKPOINT_INTERVAL_SECONDS": "0.1"}


@pytest.fixture(scope="module")
def ledger_settings() -> dict[str, Any]:
    # A signing key of another log: a server that does not seal must never use it (the
    # sealer processes below sign with the development key, of "openloop.dev/ledger").
    return {
        "sealer_in_process": False,
        "log_signing_key": generate_signer_key("example.org/not-this-log"),
    }


async def _proven(ledger: Stub, transfer_id: str) -> None:
    """``transfer_id`` has an inclusion proof against a checkpoint signed by the log's key."""
    proof = await ledger.GetInclusionProof(
        service_pb2.GetInclusionProofRequest(transfer_id=transfer_id)
    )
    root = open_checkpoint(proof.checkpoint.signed_note, VERIFIER).root
    verify_inclusion(
        leaf_hash(proof.leaf), proof.leaf_index, proof.checkpoint.tree_size, proof.hashes, root
    )


async def test_a_sealer_process_seals_what_a_server_that_does_not_seal_commits(
    ledger: Stub, ledger_database: str, tmp_path: Path
) -> None:
    first = await commit_transfers(ledger, 3)
    await asyncio.sleep(0.5)  # five of the server's checkpoint intervals
    with pytest.raises(grpc.aio.AioRpcError) as unsealed:
        await ledger.GetCheckpoint(service_pb2.GetCheckpointRequest())
    assert unsealed.value.code() == grpc.StatusCode.NOT_FOUND
    info = error_info_of(unsealed.value)
    assert info is not None
    assert info.reason == "CHECKPOINT_NOT_FOUND"

    sealer = LedgerProcess(
        ledger_database, tmp_path / "sealer.log", command="seal", env=SEALER_SETTINGS
    )
    await sealer.start()
    try:
        checkpoint = await sealed_through(ledger, first[-1])
        # The log's name comes from the checkpoints the sealer signed, not the server's keys.
        assert checkpoint.origin == "openloop.dev/ledger"
        await _proven(ledger, first[0])
        # Committed after the sealer started, with no word to it: its own look finds them.
        later = await commit_transfers(ledger, 2)
        await sealed_through(ledger, later[-1])
        await _proven(ledger, later[-1])

        async with grpc.aio.insecure_channel(sealer.target) as channel:
            on_sealer = cast("Stub", service_pb2_grpc.LedgerServiceStub(channel))
            with pytest.raises(grpc.aio.AioRpcError) as not_served:
                await on_sealer.GetCheckpoint(service_pb2.GetCheckpointRequest())
        assert not_served.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await sealer.stop()
    assert sealer.returncode == 0, (tmp_path / "sealer.log").read_text()[-3000:]


async def test_a_standby_sealer_takes_over_when_the_leader_is_killed(
    ledger: Stub, ledger_database: str, tmp_path: Path
) -> None:
    leader = LedgerProcess(
        ledger_database, tmp_path / "leader.log", command="seal", env=SEALER_SETTINGS
    )
    standby = LedgerProcess(
        ledger_database, tmp_path / "standby.log", command="seal", env=SEALER_SETTINGS
    )
    await leader.start()
    try:
        before = await commit_transfers(ledger, 2)
        await sealed_through(ledger, before[-1])
        await standby.start()
        await leader.kill()
        # PostgreSQL frees the dead leader's advisory lock when its connection drops.
        after = await commit_transfers(ledger, 2)
        await sealed_through(ledger, after[-1])
        await _proven(ledger, after[-1])
    finally:
        await leader.stop()
        await standby.stop()


def test_only_a_process_that_signs_is_warned_of_the_development_signing_key() -> None:
    settings = LedgerSettings(leaf_key=SecretStr("a-leaf-key-of-this-deployment-" + "x" * 16))
    assert settings.uses_development_keys(signs=True)
    assert not settings.uses_development_keys(signs=False)
    assert LedgerSettings().uses_development_keys(signs=False)  # the leaf key
