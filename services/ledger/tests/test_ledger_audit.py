"""The offline verifier against a real ledger database, clean and tampered with.

A ledger server writes a realistic journal (plain, pending, posted, voided and
history-keeping transfers) and seals it; each test then copies that database,
tampers with the copy the way an insider with SQL access could, and runs the
auditor's verifier on it. A second journal holds pending transfers with timeouts
(posted, voided, expired and still pending) for the ``pending_timeouts`` checks.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
import grpc
import pytest
import pytest_asyncio

from openloop.ledger.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_ledger.app import MIGRATIONS_DIR, build
from openloop_ledger.audit import leaf_tiles, sources
from openloop_ledger.audit.__main__ import main as audit_main
from openloop_ledger.audit.__main__ import verify
from openloop_ledger.audit.parallel import verify_database
from openloop_ledger.audit.replay import Replay
from openloop_ledger.audit.sources import DatabaseSource, ExportSource
from openloop_ledger.audit.verifier import Report
from openloop_ledger.config import (
    DEVELOPMENT_LEAF_KEY,
    DEVELOPMENT_LOG_SIGNING_KEY,
    DEVELOPMENT_LOG_VERIFIER_KEY,
    LedgerSettings,
)
from openloop_ledger.merkle.note import Checkpoint, Signer, generate_signer_key, sign_checkpoint
from openloop_runtime import migrations
from openloop_runtime.server import running_server
from services.ledger.tests.ledger_helpers import (
    T,
    checkpoint_covering,
    open_account,
    submit,
    transfer,
)

PENDING = resources_pb2.TransferFlags(pending=True)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _write_journal(stub: service_pb2_grpc.LedgerServiceAsyncStub) -> int:
    funding = await open_account(stub, "funding")
    wallets = [
        await open_account(stub, "wallet", flags=resources_pb2.AccountFlags(history=True))
        for _ in range(3)
    ]
    shop = await open_account(stub, "shop")
    count = 0
    for round_ in range(4):
        moves = [transfer(funding, w, 1_000 + round_) for w in wallets]
        moves += [transfer(w, shop, 100 + i) for i, w in enumerate(wallets)]
        assert await submit(stub, *moves) == [T.CREATE_TRANSFER_RESULT_OK] * len(moves)
        count += len(moves)
    hold, release = (
        transfer(wallets[0], shop, 50, flags=PENDING),
        transfer(wallets[1], shop, 60, flags=PENDING),
    )
    post = transfer(
        wallets[0],
        shop,
        0,
        flags=resources_pb2.TransferFlags(post_pending_transfer=True),
        pending_id=hold.id,
    )
    void = transfer(
        wallets[1],
        shop,
        0,
        flags=resources_pb2.TransferFlags(void_pending_transfer=True),
        pending_id=release.id,
    )
    assert await submit(stub, hold, release, post, void) == [T.CREATE_TRANSFER_RESULT_OK] * 4
    return count + 4


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sealed_database(fresh_database: Callable[[str], Awaitable[str]]) -> str:
    """A ledger database whose whole journal is sealed, with no server attached."""
    url = await fresh_database("audited")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    settings = LedgerSettings(port=0, database_url=url, checkpoint_interval_seconds=0.05)
    async with (
        running_server("ledger.openloop.dev", settings, build(settings)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = cast(
            "service_pb2_grpc.LedgerServiceAsyncStub", service_pb2_grpc.LedgerServiceStub(channel)
        )
        size = await _write_journal(stub)
        assert (await checkpoint_covering(stub, size)).tree_size == size
    return url


_copies = iter(range(1_000_000))


async def _copy_of(url: str) -> str:
    """A fresh copy of the database at ``url`` for one test to tamper with."""
    name = f"tampered_{next(_copies)}"
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    source = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    finally:
        await admin.close()
    return url.rsplit("/", 1)[0] + "/" + name


@pytest_asyncio.fixture(loop_scope="session")
async def copy(sealed_database: str) -> AsyncIterator[str]:
    """A fresh copy of the sealed database for one test to tamper with."""
    yield await _copy_of(sealed_database)


async def _verify(url: str) -> Report:
    source = await DatabaseSource.connect(url)
    try:
        return await verify(source, DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY)
    finally:
        await source.close()


async def _tamper(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


_NO_POSITION_CHECK = "ALTER TABLE transfers DROP CONSTRAINT ck_transfers_position_nonnegative"
_NO_FLAGS_CHECK = "ALTER TABLE transfers DROP CONSTRAINT IF EXISTS ck_transfers_flags_range"
_INSERT_AT_MINUS_ONE = (
    "INSERT INTO transfers (id, position, debit_account_id, credit_account_id, amount,"
    " ledger, code, user_data, create_time) SELECT 'forged-neg', -1, debit_account_id,"
    " credit_account_id, 777, ledger, code, '', create_time FROM transfers WHERE position = 0"
)
_FIRST_HISTORY_ROW = (
    "(SELECT min(position) FROM account_balances WHERE account_id ="
    " (SELECT min(account_id) FROM account_balances))"
)
"""Where the history of the first history account (by id) starts."""
_EDIT_HISTORY_ROW = (
    "UPDATE account_balances SET credits_posted = credits_posted + 500"
    " WHERE account_id = (SELECT min(account_id) FROM account_balances)"
    " AND position = (SELECT min(position) FROM account_balances WHERE account_id ="
    " (SELECT min(account_id) FROM account_balances))"
)


async def _fetchval(url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def _both(url: str) -> Report:
    """The serial and the parallel verifier's report, which must agree."""
    serial = await _verify(url)
    parallel = await verify_database(
        url, DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY, jobs=2, range_size=5
    )
    assert parallel.findings == serial.findings
    return serial


async def test_an_untouched_ledger_verifies(copy: str) -> None:
    report = await _verify(copy)
    assert report.ok, report.findings
    assert report.leaves == 28
    assert report.checkpoints_verified >= 1
    assert report.unsealed == 0
    assert report.accounts_verified == 5


async def test_a_changed_amount_is_named_by_its_position(copy: str) -> None:
    await _tamper(copy, "UPDATE transfers SET amount = amount + 1 WHERE position = 7")
    report = await _verify(copy)
    first = report.first
    assert first is not None
    assert (first.kind, first.position) == ("changed", 7)
    assert {f.kind for f in report.findings} >= {"changed", "checkpoint", "balance"}


async def test_a_deleted_row_is_named(copy: str) -> None:
    await _tamper(copy, "DELETE FROM transfers WHERE position = 5")
    report = await _verify(copy)
    first = report.first
    assert first is not None
    assert (first.kind, first.position) == ("deleted", 5)


async def test_two_swapped_rows_are_named_as_reordered(copy: str) -> None:
    await _tamper(
        copy,
        "ALTER TABLE transfers DROP CONSTRAINT ck_transfers_position_nonnegative",
        "UPDATE transfers SET position = -1 WHERE position = 3",
        "UPDATE transfers SET position = 3 WHERE position = 4",
        "UPDATE transfers SET position = 4 WHERE position = -1",
    )
    report = await _verify(copy)
    first = report.first
    assert first is not None
    assert (first.kind, first.position) == ("reordered", 3)
    assert [f.position for f in report.findings if f.kind == "reordered"] == [3, 4]


async def test_an_edited_balance_is_named_by_account(copy: str) -> None:
    await _tamper(
        copy,
        "UPDATE accounts SET credits_posted = credits_posted + 500"
        " WHERE id = (SELECT min(id) FROM accounts WHERE id LIKE 'wallet-%')",
    )
    report = await _verify(copy)
    assert [f.kind for f in report.findings] == ["balance"]
    assert "wallet-" in report.findings[0].message


@pytest.mark.parametrize(
    "statement",
    [
        # settlement would follow the shop's money to another bank
        "UPDATE accounts SET participant_id = 'bank-z'"
        " WHERE id = (SELECT min(id) FROM accounts WHERE id LIKE 'shop-%')",
        "UPDATE accounts SET debits_must_not_exceed_credits = true"
        " WHERE id = (SELECT min(id) FROM accounts WHERE id LIKE 'shop-%')",
        "UPDATE accounts SET history = true"
        " WHERE id = (SELECT min(id) FROM accounts WHERE id LIKE 'shop-%')",
        "UPDATE accounts SET code = 2"
        " WHERE id = (SELECT min(id) FROM accounts WHERE id LIKE 'shop-%')",
        "UPDATE accounts SET user_data = 'someone else'"
        " WHERE id = (SELECT min(id) FROM accounts WHERE id LIKE 'shop-%')",
    ],
)
async def test_an_edited_account_is_named_by_its_mac(copy: str, statement: str) -> None:
    await _tamper(copy, statement)
    report = await _verify(copy)
    assert [f.kind for f in report.findings] == ["account"]
    assert "shop-" in report.findings[0].message
    assert "no longer matches its MAC" in report.findings[0].message


async def test_an_account_inserted_or_stripped_of_its_mac_is_named(copy: str) -> None:
    await _tamper(
        copy,
        "INSERT INTO accounts (id, ledger, code, debits_must_not_exceed_credits,"
        " credits_must_not_exceed_debits, user_data, participant_id)"
        " VALUES ('forged-1', 764, 1, false, false, '', 'bank-a')",
        "UPDATE accounts SET mac = NULL"
        " WHERE id = (SELECT min(id) FROM accounts WHERE id LIKE 'shop-%')",
    )
    report = await _verify(copy)
    assert [f.kind for f in report.findings] == ["account", "account"]
    named = " ".join(f.message for f in report.findings)
    assert "'forged-1' has no MAC" in named
    assert "shop-" in named


async def test_a_mac_copied_from_another_account_does_not_fit(copy: str) -> None:
    await _tamper(
        copy,
        "UPDATE accounts SET mac = (SELECT mac FROM accounts WHERE id LIKE 'wallet-%'"
        " ORDER BY id LIMIT 1) WHERE id = (SELECT min(id) FROM accounts WHERE id LIKE 'shop-%')",
    )
    report = await _verify(copy)
    assert [f.kind for f in report.findings] == ["account"]
    assert "shop-" in report.findings[0].message


async def test_a_rewritten_row_and_tile_still_break_the_signed_root(copy: str) -> None:
    """An insider who also rewrites the sealed leaf hashes cannot re-sign the checkpoint."""
    await _tamper(
        copy,
        "UPDATE transfers SET amount = amount + 1 WHERE position = 2",
        "DELETE FROM merkle_tiles",
    )
    report = await _verify(copy)
    assert "checkpoint" in {f.kind for f in report.findings}


async def test_an_inserted_row_beyond_the_journal_is_named(copy: str) -> None:
    await _tamper(
        copy,
        "INSERT INTO transfers (id, position, debit_account_id, credit_account_id, amount,"
        " ledger, code, user_data, create_time) SELECT 'forged', size, debit_account_id,"
        " credit_account_id, 1, ledger, code, '', now() FROM transfers, journal"
        " WHERE position = 0",
    )
    report = await _verify(copy)
    kinds = {f.kind for f in report.findings}
    assert "inserted" in kinds


async def test_a_checkpoint_edited_after_signing_is_refused(copy: str) -> None:
    await _tamper(
        copy,
        "UPDATE checkpoints SET root_hash = sha256(root_hash)"
        " WHERE tree_size = (SELECT max(tree_size) FROM checkpoints)",
    )
    report = await _verify(copy)
    assert [f.kind for f in report.findings] == ["checkpoint"]
    assert "differs from its signed note" in report.findings[0].message


async def test_a_checkpoint_re_signed_by_another_key_is_refused(copy: str) -> None:
    impostor = Signer.from_key(generate_signer_key("openloop.dev/ledger"))
    conn = await asyncpg.connect(_dsn(copy))
    try:
        row = await conn.fetchrow(
            "SELECT tree_size, root_hash FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
        )
        note = sign_checkpoint(
            Checkpoint("openloop.dev/ledger", row["tree_size"], bytes(row["root_hash"])),
            impostor,
        )
        await conn.execute(
            "UPDATE checkpoints SET signed_note = $1 WHERE tree_size = $2", note, row["tree_size"]
        )
    finally:
        await conn.close()
    report = await _verify(copy)
    assert [f.kind for f in report.findings] == ["checkpoint"]
    assert "no signature" in report.findings[0].message


async def test_a_trusted_checkpoint_that_is_not_one_stops_the_command_with_a_reason(
    copy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is no signed checkpoint, or one signed by another key, is the auditor's
    mistake: exit 2 with what is wrong, not a traceback and not a verdict on the ledger."""
    source = await DatabaseSource.connect(copy)
    try:
        await source.export(tmp_path / "export")
    finally:
        await source.close()
    stranger = Signer.from_key(generate_signer_key("openloop.dev/ledger"))
    notes = {
        "garbage": "not a checkpoint\n",
        "foreign": sign_checkpoint(Checkpoint("openloop.dev/ledger", 1, bytes(32)), stranger),
    }
    for name, note in notes.items():
        (tmp_path / name).write_text(note)
        code = await asyncio.to_thread(
            audit_main,
            [
                "verify",
                "--export",
                str(tmp_path / "export"),
                "--verifier-key",
                DEVELOPMENT_LOG_VERIFIER_KEY,
                "--leaf-key",
                DEVELOPMENT_LEAF_KEY,
                "--trusted-checkpoint",
                str(tmp_path / name),
            ],
        )
        captured = capsys.readouterr()
        assert code == 2, name
        assert captured.err.startswith("cannot verify: "), name
        assert "FAILED" not in captured.out
        assert "OK" not in captured.out


async def test_an_export_verifies_offline_and_the_command_reports(
    copy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = await DatabaseSource.connect(copy)
    try:
        written = await source.export(tmp_path / "export")
    finally:
        await source.close()
    report = await verify(
        ExportSource(tmp_path / "export"), DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY
    )
    assert report.ok
    assert report.leaves == written
    exports = tmp_path / "export" / "transfers.jsonl"
    lines = exports.read_text().splitlines()
    lines[1] = lines[1].replace('"amount": ', '"amount": 1', 1)
    exports.write_text("\n".join(lines) + "\n")
    code = await asyncio.to_thread(
        audit_main,
        [
            "verify",
            "--export",
            str(tmp_path / "export"),
            "--verifier-key",
            DEVELOPMENT_LOG_VERIFIER_KEY,
            "--leaf-key",
            DEVELOPMENT_LEAF_KEY,
        ],
    )
    assert code == 1
    assert "first: [changed] transfer" in capsys.readouterr().out


async def _export_listing_row_3_after(url: str, out: Path, listed_after: int) -> int:
    """Export ``url`` to ``out``, then move row 3's line to just after row ``listed_after``'s
    (an export is a file: its lines can be reordered without changing a row)."""
    source = await DatabaseSource.connect(url)
    try:
        written = await source.export(out)
    finally:
        await source.close()
    exports = out / "transfers.jsonl"
    lines = exports.read_text().splitlines()
    assert [json.loads(line)["position"] for line in lines] == list(range(written))
    lines.insert(listed_after, lines.pop(3))
    exports.write_text("\n".join(lines) + "\n")
    return written


@pytest.mark.parametrize("listed_after", [4, 27], ids=["swapped", "moved-to-the-end"])
async def test_rows_listed_out_of_order_in_an_export_are_named_reordered(
    copy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listed_after: int
) -> None:
    """The row listed out of place is named, and put back in its place, across chunks: no
    position is reported missing, no checkpoint fails, no balance is off (the verifier
    once reported row 3 deleted, 4 deleted too, a row beyond the journal and a failing
    checkpoint)."""
    monkeypatch.setattr(sources, "CHUNK", 4)  # row 4 ends the first chunk, row 3 starts the next
    written = await _export_listing_row_3_after(copy, tmp_path / "export", listed_after)
    report = await verify(
        ExportSource(tmp_path / "export"), DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY
    )
    assert [(f.kind, f.position) for f in report.findings] == [("reordered", 3)]
    assert f"after the one at position {listed_after}" in report.findings[0].message
    assert report.leaves == written
    assert report.checkpoints_verified >= 1


async def test_a_row_listed_too_far_from_its_place_leaves_no_checkpoint_unchecked(
    copy: str, tmp_path: Path
) -> None:
    """Memory bounds how far back a row is put: listed beyond the window, its place has
    been named missing by the time it comes. It is named again as listed too late, and
    the tree keeps one leaf per position, so every checkpoint after it is checked (and
    fails) at its own size, and no row counts as beyond the journal."""
    written = await _export_listing_row_3_after(copy, tmp_path / "export", 27)
    report = await verify(
        ExportSource(tmp_path / "export", reorder_window=2),
        DEVELOPMENT_LOG_VERIFIER_KEY,
        DEVELOPMENT_LEAF_KEY,
    )
    rows_found = [(f.kind, f.position) for f in report.findings if f.rank == 0]
    assert rows_found == [("deleted", 3), ("reordered", 3), ("reordered", 3)]
    assert any("too late to be hashed in their place" in f.message for f in report.findings)
    sizes = await _fetchval(copy, "SELECT array_agg(tree_size ORDER BY tree_size) FROM checkpoints")
    failing = [f.position + 1 for f in report.findings if f.kind == "checkpoint"]
    assert failing == [size for size in sizes if size > 3]
    assert report.leaves == written


@pytest.mark.parametrize("where", ["database", "trusted"])
async def test_a_checkpoint_signed_for_another_log_is_refused(
    copy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """The log's own key signing another origin commits this log to nothing: in the
    database it is a checkpoint finding, as the auditor's trusted checkpoint it stops the
    command (exit 2) as any checkpoint the keys do not vouch for."""
    conn = await asyncpg.connect(_dsn(copy))
    try:
        row = await conn.fetchrow(
            "SELECT tree_size, root_hash FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
        )
        note = sign_checkpoint(
            Checkpoint("another.log/ledger", row["tree_size"], bytes(row["root_hash"])),
            Signer.from_key(DEVELOPMENT_LOG_SIGNING_KEY),
        )
        if where == "database":
            await conn.execute(
                "UPDATE checkpoints SET signed_note = $1 WHERE tree_size = $2",
                note,
                row["tree_size"],
            )
    finally:
        await conn.close()
    if where == "database":
        report = await _verify(copy)
        assert [f.kind for f in report.findings] == ["checkpoint"]
        assert "signed for log 'another.log/ledger', not 'openloop.dev/ledger'" in (
            report.findings[0].message
        )
        return
    (tmp_path / "other-log").write_text(note)
    code = await asyncio.to_thread(
        audit_main,
        [
            "verify",
            "--database-url",
            copy,
            "--jobs",
            "1",
            "--verifier-key",
            DEVELOPMENT_LOG_VERIFIER_KEY,
            "--leaf-key",
            DEVELOPMENT_LEAF_KEY,
            "--trusted-checkpoint",
            str(tmp_path / "other-log"),
        ],
    )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(
        "cannot verify: checkpoint origin 'another.log/ledger' is not 'openloop.dev/ledger'"
    )
    assert "OK" not in captured.out


@pytest.mark.parametrize(
    "tamper",
    [
        (),
        ("UPDATE transfers SET amount = amount + 1 WHERE position = 7",),
        ("DELETE FROM transfers WHERE position = 12",),
        (
            "ALTER TABLE transfers DROP CONSTRAINT ck_transfers_position_nonnegative",
            "UPDATE transfers SET position = -1 WHERE position = 20",
            "UPDATE transfers SET position = 20 WHERE position = 21",
            "UPDATE transfers SET position = 21 WHERE position = -1",
        ),
        (_NO_POSITION_CHECK, _INSERT_AT_MINUS_ONE),
        (_NO_FLAGS_CHECK, "UPDATE transfers SET flags = flags + 65536 WHERE position = 5"),
        (_EDIT_HISTORY_ROW,),
    ],
    ids=["clean", "changed", "deleted", "reordered", "negative", "flags", "history"],
)
async def test_worker_processes_find_exactly_what_the_serial_verifier_finds(
    copy: str, tamper: tuple[str, ...]
) -> None:
    if tamper:
        await _tamper(copy, *tamper)
    serial = await _verify(copy)
    parallel = await verify_database(
        copy, DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY, jobs=2, range_size=5
    )
    assert parallel.findings == serial.findings
    assert (parallel.leaves, parallel.accounts_verified) == (
        serial.leaves,
        serial.accounts_verified,
    )


async def test_a_trusted_checkpoint_exposes_rewrites_hidden_by_deleting_newer_ones(
    copy: str,
) -> None:
    """An insider deletes the newest checkpoints and rewrites the rows they covered: the
    database alone no longer proves it, an auditor's saved checkpoint does."""
    conn = await asyncpg.connect(_dsn(copy))
    try:
        saved = await conn.fetchval(
            "SELECT signed_note FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
        )
    finally:
        await conn.close()
    await _tamper(
        copy,
        "DELETE FROM checkpoints WHERE tree_size > 0",
        "DELETE FROM merkle_tiles",
        "UPDATE transfers SET amount = amount + 1 WHERE position = (SELECT max(position)"
        " FROM transfers WHERE flags = 0)",
        "UPDATE accounts SET debits_posted = debits_posted + 1 WHERE id = (SELECT"
        " debit_account_id FROM transfers WHERE flags = 0 ORDER BY position DESC LIMIT 1)",
        "UPDATE accounts SET credits_posted = credits_posted + 1 WHERE id = (SELECT"
        " credit_account_id FROM transfers WHERE flags = 0 ORDER BY position DESC LIMIT 1)",
        # ... and the balance history from that transfer on, which the verifier checks too.
        "UPDATE account_balances b SET debits_posted = debits_posted + 1 FROM (SELECT position,"
        " debit_account_id FROM transfers WHERE flags = 0 ORDER BY position DESC LIMIT 1) t"
        " WHERE b.account_id = t.debit_account_id AND b.position >= t.position",
        "UPDATE account_balances b SET credits_posted = credits_posted + 1 FROM (SELECT position,"
        " credit_account_id FROM transfers WHERE flags = 0 ORDER BY position DESC LIMIT 1) t"
        " WHERE b.account_id = t.credit_account_id AND b.position >= t.position",
    )
    alone = await _verify(copy)
    assert alone.ok, alone.findings
    assert alone.unsealed == alone.leaves
    source = await DatabaseSource.connect(copy)
    try:
        trusted = await verify(
            source, DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY, trusted=[saved]
        )
    finally:
        await source.close()
    assert "checkpoint" in {f.kind for f in trusted.findings}


def test_the_replay_refuses_a_post_that_takes_more_than_was_reserved() -> None:
    replay = Replay()
    replay.apply("hold", "w", "s", 50, 1 << 1, None)
    replay.apply("post", "w", "s", 60, 1 << 2, "hold")
    replay.apply("hold2", "w", "s", 10, 1 << 1, None)
    replay.apply("void2", "w", "x", 10, 1 << 3, "hold2")
    assert len(replay.problems) == 2
    assert "reserved 50" in replay.problems[0]
    assert "other accounts" in replay.problems[1]


@pytest.mark.parametrize(
    "tamper",
    [
        (_NO_FLAGS_CHECK, "UPDATE transfers SET flags = flags + 65536 WHERE position = 5"),
        (
            "ALTER TABLE transfers DROP CONSTRAINT ck_transfers_amount_nonnegative",
            "UPDATE transfers SET amount = -5 WHERE position = 5",
        ),
    ],
    ids=["flags-beyond-16-bits", "negative-amount"],
)
async def test_a_value_that_cannot_be_a_leaf_is_a_changed_row_not_a_crash(
    copy: str, tamper: tuple[str, ...]
) -> None:
    await _tamper(copy, *tamper)
    report = await _both(copy)
    first = report.first
    assert first is not None
    assert (first.kind, first.position) == ("changed", 5)
    assert "cannot be a leaf" in first.message
    assert [f.position for f in report.findings if f.kind == "changed"] == [5]


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE transfers SET flags = 65536 WHERE position = 5", "ck_transfers_flags_range"),
        ("UPDATE transfers SET flags = -1 WHERE position = 5", "ck_transfers_flags_range"),
        (
            "UPDATE transfers SET pending_id = '' WHERE position = 5",
            "ck_transfers_pending_id_not_empty",
        ),
    ],
)
async def test_the_database_keeps_flags_and_pending_ids_within_their_leaf_fields(
    copy: str, statement: str, constraint: str
) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match=constraint):
        await _tamper(copy, statement)


async def test_an_empty_pending_id_is_a_changed_row(copy: str) -> None:
    """NULL and '' encode to the same leaf; the ledger only ever writes NULL."""
    await _tamper(
        copy,
        "ALTER TABLE transfers DROP CONSTRAINT IF EXISTS ck_transfers_pending_id_not_empty",
        "UPDATE transfers SET pending_id = '' WHERE position = 5",
    )
    report = await _verify(copy)
    assert [(f.kind, f.position) for f in report.findings] == [("changed", 5)]
    assert "pending_id ''" in report.findings[0].message


@pytest.mark.parametrize(
    "tamper",
    [
        # The last row and every checkpoint covering it: no signed root says it existed.
        (
            "DELETE FROM transfers WHERE position = 27",
            "DELETE FROM checkpoints WHERE tree_size > 27",
        ),
        # Committed rows the sealer has not reached yet look just the same.
        ("UPDATE journal SET size = size + 3",),
    ],
    ids=["tail-and-checkpoints", "unsealed-tail"],
)
async def test_rows_missing_below_the_journal_size_are_named_deleted(
    copy: str, tamper: tuple[str, ...]
) -> None:
    size = await _fetchval(copy, "SELECT max(position) + 1 FROM transfers")
    await _tamper(copy, *tamper)
    report = await _both(copy)
    first = report.first
    assert first is not None
    end = min(size, 27) if len(tamper) == 2 else size
    assert (first.kind, first.position) == ("deleted", end)
    assert [f.position for f in report.findings if f.kind == "deleted"] == [end]


async def test_a_row_at_a_negative_position_is_named_inserted(copy: str) -> None:
    await _tamper(copy, _NO_POSITION_CHECK, _INSERT_AT_MINUS_ONE)
    report = await _both(copy)
    assert [(f.kind, f.position) for f in report.findings] == [("inserted", -1)]
    assert "'forged-neg'" in report.findings[0].message


@pytest.mark.parametrize(
    ("tamper", "word"),
    [
        ((_EDIT_HISTORY_ROW,), "changed"),
        (
            (
                "DELETE FROM account_balances WHERE account_id ="
                " (SELECT min(account_id) FROM account_balances) AND position ="
                " (SELECT min(position) FROM account_balances WHERE account_id ="
                " (SELECT min(account_id) FROM account_balances))",
            ),
            "deleted",
        ),
        (
            (
                # A history row of the account at a transfer of two other accounts.
                "INSERT INTO account_balances SELECT b.account_id, t.position, t.id,"
                " b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted,"
                " b.create_time FROM account_balances b, transfers t"
                " WHERE b.account_id = (SELECT min(account_id) FROM account_balances)"
                " AND b.position = (SELECT min(position) FROM account_balances WHERE"
                " account_id = b.account_id) AND t.position ="
                " (SELECT min(position) FROM transfers WHERE debit_account_id <> b.account_id"
                " AND credit_account_id <> b.account_id)",
            ),
            "inserted",
        ),
    ],
    ids=["changed", "deleted", "inserted"],
)
async def test_a_tampered_balance_history_row_is_named_by_its_position(
    copy: str, tamper: tuple[str, ...], word: str
) -> None:
    account = await _fetchval(copy, "SELECT min(account_id) FROM account_balances")
    if word == "inserted":
        position = await _fetchval(
            copy,
            "SELECT min(position) FROM transfers WHERE debit_account_id <> $1"
            " AND credit_account_id <> $1",
            account,
        )
    else:
        position = await _fetchval(copy, _FIRST_HISTORY_ROW)
    await _tamper(copy, *tamper)
    report = await _both(copy)
    assert [(f.kind, f.position) for f in report.findings] == [("balance", position)]
    assert f"history row of account {account!r} at position {position}" in (
        report.findings[0].message
    )
    assert f"the row was {word}" in report.findings[0].message


async def test_a_changed_transfer_of_a_history_account_is_one_history_finding(copy: str) -> None:
    """Every later history row of the account is off by as much: one finding, not one per row."""
    position = await _fetchval(copy, _FIRST_HISTORY_ROW)
    await _tamper(
        copy,
        "UPDATE transfers SET amount = amount + 1 WHERE position = (SELECT min(position)"
        " FROM account_balances WHERE account_id = (SELECT min(account_id) FROM account_balances))",
    )
    report = await _verify(copy)
    assert (report.findings[0].kind, report.findings[0].position) == ("changed", position)
    history = [f for f in report.findings if "history row" in f.message]
    assert [f.position for f in history] == [position]


async def test_a_right_edge_that_does_not_give_its_signed_root_is_named(copy: str) -> None:
    """The sealer resumes from the stored right edge, and stalls on a wrong one."""
    await _tamper(
        copy,
        "UPDATE checkpoints SET right_edge = sha256(right_edge)"
        " WHERE tree_size = (SELECT max(tree_size) FROM checkpoints)",
    )
    report = await _verify(copy)
    assert [f.kind for f in report.findings] == ["checkpoint"]
    assert "right edge does not give its signed root" in report.findings[0].message


async def test_a_rewritten_leaf_hash_is_named_as_a_tile_not_a_changed_row(copy: str) -> None:
    """The row at 3 still hashes to the signed root: the sealed leaf hash is what changed."""
    await _tamper(
        copy,
        "UPDATE merkle_tiles SET hashes = overlay(hashes placing sha256('x'::bytea)"
        " from 3 * 32 + 1 for 32) WHERE tile_level = 0 AND tile_index = 0",
    )
    report = await _both(copy)
    assert [(f.kind, f.position) for f in report.findings] == [("tile", 3)]
    assert "level-0 tile 0, entry 3" in report.findings[0].message


# a journal of many tiles ------------------------------------------------------------------

_LONG = 2_600
"""Transfers in the long journal: ten full level-0 tiles and part of an eleventh."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def long_database(fresh_database: Callable[[str], Awaitable[str]]) -> str:
    """A sealed ledger database of :data:`_LONG` plain transfers, no server attached."""
    url = await fresh_database("long")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    settings = LedgerSettings(port=0, database_url=url, checkpoint_interval_seconds=0.05)
    async with (
        running_server("ledger.openloop.dev", settings, build(settings)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = cast(
            "service_pb2_grpc.LedgerServiceAsyncStub", service_pb2_grpc.LedgerServiceStub(channel)
        )
        accounts = [await open_account(stub, "wallet") for _ in range(4)]
        moves = [transfer(accounts[n % 4], accounts[(n + 1) % 4], 1 + n) for n in range(_LONG)]
        for start in range(0, _LONG, 650):
            batch = moves[start : start + 650]
            assert await submit(stub, *batch) == [T.CREATE_TRANSFER_RESULT_OK] * len(batch)
        assert (await checkpoint_covering(stub, _LONG, seconds=20)).tree_size == _LONG
    return url


async def _verify_windowed(url: str, monkeypatch: pytest.MonkeyPatch, window: int) -> Report:
    """The serial and the parallel verifier's report with ``window`` level-0 tiles at most,
    which must agree, hold no more, and find what holding every tile finds."""
    monkeypatch.setattr(leaf_tiles, "WINDOW", 10_000)
    whole = await _verify(url)
    assert whole.leaf_tiles_held == _LONG // 256 + 1
    monkeypatch.setattr(leaf_tiles, "WINDOW", window)
    serial = await _verify(url)
    parallel = await verify_database(
        url, DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY, jobs=2, range_size=700
    )
    assert serial.findings == parallel.findings == whole.findings
    assert serial.leaf_tiles_held <= window
    assert parallel.leaf_tiles_held <= window
    return serial


@pytest.mark.parametrize("window", [1, 3])
async def test_the_verifier_holds_a_window_of_leaf_tiles_and_finds_rows_far_apart(
    long_database: str, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """Its memory no longer grows with the journal (32 bytes a transfer, 3 GB for 100
    million), and rows changed in the first and the last tile, and swapped across a tile
    boundary, are named as when it held every tile."""
    url = await _copy_of(long_database)
    clean = await _verify_windowed(url, monkeypatch, window)
    assert clean.ok, clean.findings
    assert clean.leaves == _LONG
    await _tamper(
        url,
        "UPDATE transfers SET amount = amount + 1"
        " WHERE position IN (1, (SELECT max(position) FROM transfers))",
        _NO_POSITION_CHECK,
        "UPDATE transfers SET position = -1 WHERE position = 767",
        "UPDATE transfers SET position = 767 WHERE position = 768",
        "UPDATE transfers SET position = 768 WHERE position = -1",
    )
    report = await _verify_windowed(url, monkeypatch, window)
    assert [(f.kind, f.position) for f in report.findings if f.rank == 0] == [
        ("changed", 1),
        ("reordered", 767),
        ("reordered", 768),
        ("changed", _LONG - 1),
    ]


async def _long_export(url: str, out: Path) -> list[str]:
    """Export ``url`` to ``out``; returns the lines of its ``leaf_tiles.jsonl``."""
    source = await DatabaseSource.connect(url)
    try:
        await source.export(out)
    finally:
        await source.close()
    return (out / "leaf_tiles.jsonl").read_text().splitlines()


def _rewrite_leaf_hash(line: str, entry: int) -> str:
    tile = json.loads(line)
    hashes = bytearray(base64.b64decode(tile["hashes"]))
    hashes[entry * 32 : (entry + 1) * 32] = bytes(32)
    return json.dumps({**tile, "hashes": base64.b64encode(bytes(hashes)).decode()})


async def test_an_export_is_verified_a_window_of_leaf_tiles_at_a_time(
    long_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its tiles file is read in order as the rows are: leaf hashes rewritten in its first
    and its last tile are named as tiles, as when every tile was read first."""
    lines = await _long_export(long_database, tmp_path / "export")
    assert [json.loads(line)["tile_index"] for line in lines] == list(range(_LONG // 256 + 1))
    lines[0] = _rewrite_leaf_hash(lines[0], 3)
    lines[-1] = _rewrite_leaf_hash(lines[-1], 5)
    (tmp_path / "export" / "leaf_tiles.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(leaf_tiles, "WINDOW", 2)
    report = await verify(
        ExportSource(tmp_path / "export"), DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY
    )
    last_tile = _LONG // 256
    assert [(f.kind, f.position) for f in report.findings] == [
        ("tile", 3),
        ("tile", last_tile * 256 + 5),
    ]
    assert f"level-0 tile {last_tile}, entry 5" in report.findings[1].message
    assert report.leaf_tiles_held <= 2
    assert report.leaves == _LONG


@pytest.mark.parametrize(
    ("tile_window", "late"), [(4, False), (1, True)], ids=["put-back", "too-late"]
)
async def test_tile_lines_listed_out_of_order_are_named_and_never_skip_a_check(
    long_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tile_window: int,
    late: bool,
) -> None:
    """As for rows: a tile line listed after a later one is named, and put back in its place
    when it is near it; listed too far away, its rows were compared with no sealed leaf
    hashes, and the finding says so (never a check skipped in silence)."""
    lines = await _long_export(long_database, tmp_path / "export")
    lines.insert(5, lines.pop(2))  # tile 2 listed after tile 5
    (tmp_path / "export" / "leaf_tiles.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(leaf_tiles, "WINDOW", 1)
    report = await verify(
        ExportSource(tmp_path / "export", tile_window=tile_window),
        DEVELOPMENT_LOG_VERIFIER_KEY,
        DEVELOPMENT_LEAF_KEY,
    )
    assert [(f.kind, f.position) for f in report.findings] == [("tile", 2 * 256)]
    message = report.findings[0].message
    assert "lists level-0 tile 2 after tile 5" in message
    assert ("too late to be compared with the rows at positions 512..767" in message) == late
    assert report.leaf_tiles_held <= 1


# pending_timeouts --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Timed:
    """A sealed ledger whose pending transfers have timeouts, and where each one stands."""

    url: str
    positions: dict[str, int]
    """By role: ``posted``, ``voided``, ``expired`` (each resolved), ``waiting`` and
    ``later`` (still pending, with a timeout) and ``untimed`` (pending, no timeout)."""


async def _write_timed_journal(stub: service_pb2_grpc.LedgerServiceAsyncStub) -> dict[str, str]:
    funding = await open_account(stub, "funding")
    wallet = await open_account(stub, "wallet", flags=resources_pb2.AccountFlags(history=True))
    shop = await open_account(stub, "shop")
    assert await submit(stub, transfer(funding, wallet, 10_000)) == [T.CREATE_TRANSFER_RESULT_OK]
    holds = {
        role: transfer(wallet, shop, amount, flags=PENDING, timeout=timeout)
        for role, amount, timeout in [
            ("expired", 10, 1),
            ("posted", 20, 3_600),
            ("voided", 30, 3_600),
            ("waiting", 40, 3_600),
            ("later", 50, 7_200),
            ("untimed", 60, 0),
        ]
    }
    # The expiring hold first, so that its second runs while the rest is written.
    assert await submit(stub, holds["expired"]) == [T.CREATE_TRANSFER_RESULT_OK]
    # Posted in the hold's own batch: its timeout row is added and removed at once.
    post = transfer(
        wallet,
        shop,
        15,
        flags=resources_pb2.TransferFlags(post_pending_transfer=True),
        pending_id=holds["posted"].id,
    )
    assert await submit(stub, holds["posted"], post) == [T.CREATE_TRANSFER_RESULT_OK] * 2
    rest = [holds[role] for role in ("voided", "waiting", "later", "untimed")]
    assert await submit(stub, *rest) == [T.CREATE_TRANSFER_RESULT_OK] * 4
    void = transfer(
        wallet,
        shop,
        0,
        flags=resources_pb2.TransferFlags(void_pending_transfer=True),
        pending_id=holds["voided"].id,
    )
    assert await submit(stub, void) == [T.CREATE_TRANSFER_RESULT_OK]
    expiry = service_pb2.LookupTransfersRequest(ids=[f"@expiry:{holds['expired'].id}"])
    for _ in range(200):
        if (await stub.LookupTransfers(expiry)).transfers:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the expirer did not void the timed-out hold")
    return {role: hold.id for role, hold in holds.items()}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def timed_database(fresh_database: Callable[[str], Awaitable[str]]) -> _Timed:
    url = await fresh_database("timed")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
    settings = LedgerSettings(
        port=0, database_url=url, checkpoint_interval_seconds=0.05, expiry_interval_seconds=0.1
    )
    async with (
        running_server("ledger.openloop.dev", settings, build(settings)) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = cast(
            "service_pb2_grpc.LedgerServiceAsyncStub", service_pb2_grpc.LedgerServiceStub(channel)
        )
        ids = await _write_timed_journal(stub)
        size = await _fetchval(url, "SELECT size FROM journal")
        assert (await checkpoint_covering(stub, size)).tree_size == size
    positions = {
        role: await _fetchval(url, "SELECT position FROM transfers WHERE id = $1", transfer_id)
        for role, transfer_id in ids.items()
    }
    return _Timed(url, positions)


@pytest_asyncio.fixture(loop_scope="session")
async def timed_copy(timed_database: _Timed) -> _Timed:
    return _Timed(await _copy_of(timed_database.url), timed_database.positions)


async def _export(url: str, out: Path) -> Path:
    source = await DatabaseSource.connect(url)
    try:
        await source.export(out)
    finally:
        await source.close()
    return out


async def _every_path(url: str, out: Path) -> Report:
    """The serial report, once the parallel verifier and an export's agree with it."""
    serial = await _both(url)
    exported = await verify(
        ExportSource(await _export(url, out)), DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY
    )
    assert exported.findings == serial.findings
    return serial


async def test_timed_holds_resolved_or_pending_verify_on_every_path(
    timed_copy: _Timed, tmp_path: Path
) -> None:
    stored = await _fetchval(
        timed_copy.url, "SELECT array_agg(transfer_id ORDER BY transfer_id) FROM pending_timeouts"
    )
    assert len(stored) == 2  # waiting and later: resolved holds and untimed ones have none
    report = await _every_path(timed_copy.url, tmp_path / "export")
    assert report.ok, report.findings
    lines = (tmp_path / "export" / "pending_timeouts.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["transfer_id"] for line in lines) == stored


@pytest.mark.parametrize(
    ("tamper", "role", "word"),
    [
        # amount 40: the hold still pending with a timeout of an hour (_write_timed_journal)
        (
            (
                "DELETE FROM pending_timeouts"
                " WHERE transfer_id = (SELECT id FROM transfers WHERE flags = 2 AND amount = 40)",
            ),
            "waiting",
            "deleted",
        ),
        (
            (
                "UPDATE pending_timeouts SET expires_at = expires_at + interval '30 days'"
                " WHERE transfer_id = (SELECT id FROM transfers WHERE flags = 2 AND amount = 40)",
            ),
            "waiting",
            "changed",
        ),
        (
            (
                "UPDATE pending_timeouts SET expires_at = expires_at - interval '1 microsecond'"
                " WHERE transfer_id = (SELECT id FROM transfers WHERE flags = 2 AND amount = 40)",
            ),
            "waiting",
            "changed",
        ),
        (
            (
                "INSERT INTO pending_timeouts SELECT id, create_time + interval '1 hour'"
                " FROM transfers WHERE flags = 2 AND amount = 20",
            ),
            "posted",
            "inserted",
        ),
        (
            (
                "INSERT INTO pending_timeouts SELECT id, now() FROM transfers"
                " WHERE flags = 2 AND timeout = 0",
            ),
            "untimed",
            "inserted",
        ),
    ],
    ids=["deleted", "later", "earlier", "resolved-hold", "untimed-hold"],
)
async def test_a_tampered_timeout_row_is_named_at_its_pending_transfer(
    timed_copy: _Timed, tmp_path: Path, tamper: tuple[str, ...], role: str, word: str
) -> None:
    await _tamper(timed_copy.url, *tamper)
    report = await _every_path(timed_copy.url, tmp_path / "export")
    position = timed_copy.positions[role]
    assert [(f.kind, f.position) for f in report.findings] == [("timeout", position)]
    assert f"at position {position}" in report.findings[0].message
    assert f"the row was {word}" in report.findings[0].message


async def test_a_timeout_row_naming_no_transfer_is_named_inserted(
    timed_copy: _Timed, tmp_path: Path
) -> None:
    await _tamper(
        timed_copy.url,
        "ALTER TABLE pending_timeouts DROP CONSTRAINT fk_pending_timeouts_transfer_id_transfers",
        "INSERT INTO pending_timeouts VALUES ('forged-hold', now())",
    )
    report = await _every_path(timed_copy.url, tmp_path / "export")
    assert [f.kind for f in report.findings] == ["timeout"]
    assert "'forged-hold', which is no transfer in the journal" in report.findings[0].message


async def test_a_deleted_timeout_row_is_the_first_finding_of_the_command(
    timed_copy: _Timed, capsys: pytest.CaptureFixture[str]
) -> None:
    await _tamper(timed_copy.url, "DELETE FROM pending_timeouts")
    code = await asyncio.to_thread(
        audit_main,
        [
            "verify",
            "--database-url",
            timed_copy.url,
            "--verifier-key",
            DEVELOPMENT_LOG_VERIFIER_KEY,
            "--leaf-key",
            DEVELOPMENT_LEAF_KEY,
            "--jobs",
            "2",
        ],
    )
    assert code == 1
    out = capsys.readouterr().out
    waiting = timed_copy.positions["waiting"]
    assert "first: [timeout] pending transfer" in out
    assert f"at position {waiting} is unresolved" in out


async def test_an_export_without_timeouts_leaves_them_unchecked(
    timed_copy: _Timed, tmp_path: Path
) -> None:
    """As an export made before ``pending_timeouts.jsonl`` was."""
    await _tamper(timed_copy.url, "DELETE FROM pending_timeouts")
    out = await _export(timed_copy.url, tmp_path / "export")
    (out / "pending_timeouts.jsonl").unlink()
    report = await verify(ExportSource(out), DEVELOPMENT_LOG_VERIFIER_KEY, DEVELOPMENT_LEAF_KEY)
    assert report.ok, report.findings


def test_the_replay_knows_the_holds_left_with_a_timeout() -> None:
    replay = Replay()
    for name, timeout in (("a", 60), ("b", 60), ("c", 0), ("d", 30)):
        replay.apply(name, "w", "s", 10, 1 << 1, None, ord(name), timeout, 1_000_000)
    replay.apply("post-a", "w", "s", 5, 1 << 2, "a")
    replay.apply("void-b", "w", "s", 10, 1 << 3, "b")
    assert [(u.transfer_id, u.position, u.timeout) for u in replay.unresolved_with_timeout()] == [
        ("d", ord("d"), 30)
    ]
