"""``python -m openloop_ledger.audit verify|export``: the auditor's command line.

    verify --database-url URL | --export DIR   [--verifier-key KEY]... [--leaf-key KEY] [--jobs N]
    export --database-url URL --out DIR

Keys default to ``OPENLOOP_LEDGER_LOG_VERIFIER_KEY`` and ``OPENLOOP_LEDGER_LEAF_KEY``
(the development keys when unset, with a warning). A log that rotated its checkpoint key
is verified with every key it has signed with: repeat ``--verifier-key``, or separate the
keys in the variable with commas; the summary counts the checkpoints each key signed.
``verify`` exits 1 when it finds anything, after naming the first row that was changed,
deleted, inserted or reordered, and 2 when it cannot start: a verifier key or a
``--trusted-checkpoint`` that is malformed, not signed by the keys given, or of another
log (its origin is not the keys' name), or verifier keys of several names.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from openloop_ledger.audit.history import StoredHistory
from openloop_ledger.audit.parallel import verify_database
from openloop_ledger.audit.sources import (
    DatabaseSource,
    ExportSource,
    LedgerSource,
    check_timeouts,
    feed,
    verifier_for,
)
from openloop_ledger.audit.verifier import Report, collection_paused
from openloop_ledger.config import DEVELOPMENT_LEAF_KEY, DEVELOPMENT_LOG_VERIFIER_KEY
from openloop_ledger.merkle.note import NoteError


async def verify(
    source: LedgerSource,
    verifier_keys: str | Sequence[str],
    leaf_key: str,
    *,
    trusted: Sequence[str] = (),
) -> Report:
    """Verify ``source``; ``trusted`` are signed checkpoint notes the auditor kept from
    earlier audits, which the journal must still match even if their rows were deleted."""
    with collection_paused():
        checker = await verifier_for(source, verifier_keys, leaf_key, trusted)
        history = StoredHistory(source.balance_history())
        async for chunk in source.transfers():
            await feed(checker, source, chunk)
            upto = checker.replayed_to
            checker.check_history(await history.until(upto), upto)
        checker.listed_out_of_order(source.out_of_order())
        checker.tiles_listed_out_of_order(source.tile_lines_out_of_order())
        checker.check_history(await history.until(None), None)
        await check_timeouts(checker, source)
        return checker.finish(await source.accounts(), await source.journal_size())


def _key(given: str | None, variable: str, development: str) -> str:
    if given:
        return given
    if value := os.environ.get(variable):
        return value
    print(f"warning: {variable} is not set; using the development key", file=sys.stderr)
    return development


async def _main(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openloop_ledger.audit")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="verify a ledger database or export")
    where = check.add_mutually_exclusive_group(required=True)
    where.add_argument("--database-url")
    where.add_argument("--export", type=Path)
    check.add_argument(
        "--verifier-key",
        action="append",
        help="the log's checkpoint verifier key (repeatable: every key the log has signed "
        "with, old and new, once it has rotated its key)",
    )
    check.add_argument("--leaf-key")
    check.add_argument(
        "--trusted-checkpoint",
        action="append",
        default=[],
        type=Path,
        help="a signed checkpoint saved from an earlier audit (repeatable): the journal "
        "must still match it, so deleting newer checkpoints hides nothing",
    )
    check.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes hashing a database's journal (default: one per core; "
        "1 reads and hashes in this process)",
    )
    dump = commands.add_parser("export", help="export a ledger database for offline audit")
    dump.add_argument("--database-url", required=True)
    dump.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "export":
        db = await DatabaseSource.connect(args.database_url)
        try:
            count = await db.export(args.out)
        finally:
            await db.close()
        print(f"exported {count} transfers to {args.out}")
        return 0

    verifier_keys = args.verifier_key or _key(
        None, "OPENLOOP_LEDGER_LOG_VERIFIER_KEY", DEVELOPMENT_LOG_VERIFIER_KEY
    )
    leaf_key = _key(args.leaf_key, "OPENLOOP_LEDGER_LEAF_KEY", DEVELOPMENT_LEAF_KEY)
    trusted = [path.read_text() for path in args.trusted_checkpoint]
    started = time.perf_counter()
    try:
        report = await _verify_as_asked(args, verifier_keys, leaf_key, trusted)
    except NoteError as error:
        print(
            f"cannot verify: {error} (check --verifier-key and --trusted-checkpoint)",
            file=sys.stderr,
        )
        return 2
    elapsed = time.perf_counter() - started
    print(
        f"leaves: {report.leaves}  checkpoints verified: {report.checkpoints_verified}  "
        f"accounts verified: {report.accounts_verified}  unsealed: {report.unsealed}  "
        f"({report.leaves / elapsed:,.0f} leaves/s)"
    )
    for key, count in sorted(report.checkpoints_by_key.items()):
        print(f"  checkpoints signed by {key}: {count}")
    if report.ok:
        print("OK: every leaf, checkpoint, signature, balance and account MAC verifies")
        return 0
    first = report.first
    assert first is not None
    print(f"FAILED: {len(report.findings)} findings; first: [{first.kind}] {first.message}")
    for finding in report.findings[1:20]:
        print(f"  [{finding.kind}] {finding.message}")
    return 1


async def _verify_as_asked(
    args: argparse.Namespace, verifier_keys: str | Sequence[str], leaf_key: str, trusted: list[str]
) -> Report:
    if args.export:
        return await verify(ExportSource(args.export), verifier_keys, leaf_key, trusted=trusted)
    elif args.jobs > 1:
        return await verify_database(
            args.database_url, verifier_keys, leaf_key, jobs=args.jobs, trusted=trusted
        )
    else:
        db = await DatabaseSource.connect(args.database_url)
        try:
            return await verify(db, verifier_keys, leaf_key, trusted=trusted)
        finally:
            await db.close()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(_main(argv))


if __name__ == "__main__":
    sys.exit(main())
