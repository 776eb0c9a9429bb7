"""Rotating the checkpoint key: a real ledger seals under the old key, then under the new
key co-signed by the old one, then under the new key alone; auditors verify with both.

Each phase is a ledger server started on the same database with other settings, as a
deployment's rolling restart would do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import grpc
import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError

from openloop.ledger.v1 import service_pb2_grpc
from openloop_ledger.app import MIGRATIONS_DIR, build
from openloop_ledger.audit.__main__ import main as audit_main
from openloop_ledger.audit.__main__ import verify
from openloop_ledger.audit.sources import DatabaseSource
from openloop_ledger.audit.verifier import Report
from openloop_ledger.config import DEVELOPMENT_LEAF_KEY, LedgerSettings
from openloop_ledger.merkle.note import Signer, generate_signer_key, signed_text
from openloop_runtime import migrations
from openloop_runtime.server import running_server
from services.ledger.tests.ledger_helpers import (
    T,
    checkpoint_covering,
    open_account,
    submit,
    transfer,
)

ORIGIN = "rotation.openloop.test/ledger"
OLD_KEY = generate_signer_key(ORIGIN)
NEW_KEY = generate_signer_key(ORIGIN)
OLD = Signer.from_key(OLD_KEY)
NEW = Signer.from_key(NEW_KEY)


@dataclass(frozen=True)
class Rotated:
    url: str
    notes: list[str]
    """The signed note of every checkpoint, oldest first."""
    sizes: tuple[int, int, int]
    """The tree size at the end of each phase."""


async def _phase(url: str, signing: str, cosigning: tuple[str, ...], sealed: int) -> int:
    """Run a ledger with these keys, add three transfers to the ``sealed`` ones, and wait
    until a checkpoint covers them; returns the new tree size."""
    settings = LedgerSettings(
        port=0,
        database_url=url,
        checkpoint_interval_seconds=0.05,
        log_signing_key=SecretStr(signing),
        log_cosigning_keys=tuple(SecretStr(key) for key in cosigning),
    )
    async with (
        running_server("ledger.openloop.dev", settings, build(settings)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = cast(
            "service_pb2_grpc.LedgerServiceAsyncStub", service_pb2_grpc.LedgerServiceStub(channel)
        )
        debit, credit = await open_account(stub, "payer"), await open_account(stub, "payee")
        for amount in (1, 2, 3):  # one request each: several checkpoints per phase
            assert await submit(stub, transfer(debit, credit, amount)) == [
                T.CREATE_TRANSFER_RESULT_OK
            ]
            await asyncio.sleep(0.1)
        checkpoint = await checkpoint_covering(stub, sealed + 3)
        size: int = checkpoint.tree_size
        return size


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rotated(fresh_database: Callable[[str], Awaitable[str]]) -> Rotated:
    url = await fresh_database("rotated")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    first = await _phase(url, OLD_KEY, (), 0)
    second = await _phase(url, NEW_KEY, (OLD_KEY,), first)
    third = await _phase(url, NEW_KEY, (), second)
    source = await DatabaseSource.connect(url)
    try:
        notes = [c.signed_note for c in await source.checkpoints()]
    finally:
        await source.close()
    return Rotated(url, notes, (first, second, third))


async def _verify(url: str, *keys: str) -> Report:
    source = await DatabaseSource.connect(url)
    try:
        return await verify(source, list(keys), DEVELOPMENT_LEAF_KEY)
    finally:
        await source.close()


def _signers(note: str) -> list[int]:
    return [v.key_hash for v in signed_text(note, [OLD.verifier(), NEW.verifier()])[1]]


def _label(signer: Signer) -> str:
    return signer.verifier().key_id


async def test_each_phase_signs_with_the_keys_it_was_given(rotated: Rotated) -> None:
    assert rotated.sizes == (3, 6, 9)
    signatures = {tuple(_signers(note)) for note in rotated.notes}
    assert signatures == {(OLD.key_hash,), (NEW.key_hash, OLD.key_hash), (NEW.key_hash,)}
    assert _signers(rotated.notes[-1]) == [NEW.key_hash]
    assert _label(NEW) == f"{ORIGIN}+{NEW.key_hash:08x}"


async def test_an_auditor_with_both_keys_verifies_the_whole_log(
    rotated: Rotated, capsys: pytest.CaptureFixture[str]
) -> None:
    report = await _verify(rotated.url, OLD.verifier_key(), NEW.verifier_key())
    assert report.ok, report.findings
    assert report.checkpoints_verified == len(rotated.notes)
    by_old = sum(OLD.key_hash in _signers(note) for note in rotated.notes)
    by_new = sum(NEW.key_hash in _signers(note) for note in rotated.notes)
    assert report.checkpoints_by_key == {_label(OLD): by_old, _label(NEW): by_new}
    code = await asyncio.to_thread(
        audit_main,
        [
            "verify",
            "--database-url",
            rotated.url,
            "--verifier-key",
            OLD.verifier_key(),
            "--verifier-key",
            NEW.verifier_key(),
            "--leaf-key",
            DEVELOPMENT_LEAF_KEY,
            "--jobs",
            "2",
        ],
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"checkpoints signed by {_label(OLD)}: {by_old}" in out
    assert f"checkpoints signed by {_label(NEW)}: {by_new}" in out


async def test_the_keys_can_come_from_the_environment_as_one_list(
    rotated: Rotated, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "OPENLOOP_LEDGER_LOG_VERIFIER_KEY", f"{OLD.verifier_key()},{NEW.verifier_key()}"
    )
    monkeypatch.setenv("OPENLOOP_LEDGER_LEAF_KEY", DEVELOPMENT_LEAF_KEY)
    code = await asyncio.to_thread(
        audit_main, ["verify", "--database-url", rotated.url, "--jobs", "1"]
    )
    assert code == 0, capsys.readouterr().out


@pytest.mark.parametrize("known", ["old", "new"])
async def test_an_auditor_with_one_key_is_told_which_checkpoints_it_cannot_verify(
    rotated: Rotated, known: str
) -> None:
    signer = OLD if known == "old" else NEW
    report = await _verify(rotated.url, signer.verifier_key())
    unverifiable = [note for note in rotated.notes if signer.key_hash not in _signers(note)]
    assert unverifiable  # the phase signed by the other key alone
    assert [f.kind for f in report.findings] == ["checkpoint"] * len(unverifiable)
    assert all("no signature by key" in f.message for f in report.findings)
    assert report.checkpoints_by_key == {_label(signer): len(rotated.notes) - len(unverifiable)}


def test_a_cosigning_key_of_another_log_is_refused_without_echoing_it() -> None:
    foreign = generate_signer_key("another.log/ledger")
    with pytest.raises(ValidationError) as refused:
        LedgerSettings(log_signing_key=SecretStr(NEW_KEY), log_cosigning_keys=(SecretStr(foreign),))
    message = str(refused.value)
    assert "a rotated key keeps the log's name" in message
    # The key data is everything after the fourth "+": base64 may itself hold a "+".
    assert foreign.split("+", 4)[4] not in message
    assert NEW_KEY.split("+", 4)[4] not in message


def test_cosigning_keys_are_read_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENLOOP_LEDGER_LOG_SIGNING_KEY", NEW_KEY)
    monkeypatch.setenv("OPENLOOP_LEDGER_LOG_COSIGNING_KEYS", json.dumps([OLD_KEY]))
    signers = LedgerSettings().checkpoint_signers()
    assert [s.key_hash for s in signers] == [NEW.key_hash, OLD.key_hash]
