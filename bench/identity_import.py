"""The bulk enrolment benchmark: registry rows enrolled per second through ImportCitizens.

    python -m bench.identity_import [--rows 100000]

Starts its own PostgreSQL (fsync and synchronous_commit on) and one identity server
process that trusts a throwaway operator key (the import is an operator's call, signed
as the import tool signs it), creates two hosting participants, writes a CSV of valid
citizens (correct check digits, real districts, adults, half with the eligibility flags
set) and runs the import tool's code in this process against the server, as an operator
would. Beside it, the naive baseline measured in the same run: the same tool and server
with one row per batch, so one transaction and one round trip per citizen. Then the same
file is imported again to show a rerun enrols nothing new (every row answered with the
citizen it already has).

Every row's personal data is sealed under its own data key, as EnrollCitizen does: that is
part of the cost measured. The client, the server and the database share this machine's
cores. Prints the figures and writes bench/reports/identity-import-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from openloop.identity.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_dev.operators import dev_operator_channel, operator_env
from openloop_dev.ports import free_port
from openloop_dev.postgres import EmbeddedPostgres
from openloop_identity import import_cli
from openloop_identity.app import MIGRATIONS_DIR
from openloop_identity.domain.thai_id import check_digit
from openloop_identity.tables import citizens
from openloop_runtime import migrations

REPORT_DIR = Path(__file__).parent / "reports"
TARGET = 3000.0
"""Enrolments per second the import must reach (the real program peaked at 640/s)."""
DISTRICTS = ("1001", "1002", "1004", "5001", "5002", "4001")
HOSTS = ("bank-alpha", "wallet-beta")


@contextlib.contextmanager
def identity_process(database_url: str, workdir: Path) -> Iterator[str]:
    """An identity server on its own port, serving once its health check says so."""
    port = free_port()
    env = {
        **os.environ,
        "OPENLOOP_IDENTITY_DATABASE_URL": database_url,
        "OPENLOOP_IDENTITY_PORT": str(port),
        "OPENLOOP_IDENTITY_LOG_LEVEL": "WARNING",
        "OPENLOOP_IDENTITY_DB_POOL_SIZE": "4",
        **operator_env(workdir, "identity"),
    }
    log_path = workdir / "identity.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "openloop_identity"], env=env, stdout=log, stderr=log
        )
    target = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(300):
                if process.poll() is not None:
                    raise RuntimeError(f"the identity server exited; see {log_path}")
                with contextlib.suppress(grpc.RpcError):
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                time.sleep(0.1)
        yield target
    finally:
        process.terminate()
        process.wait(15)


def cohort(rows: int, seed: int) -> str:
    """A registry extract of ``rows`` distinct, valid adult citizens, as CSV text."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(import_cli.HEADER)
    while len(seen) < rows:
        prefix = str(rng.randrange(1, 10)) + f"{rng.randrange(10**11):011d}"
        number = prefix + str(check_digit(prefix))
        if number in seen:
            continue
        seen.add(number)
        born = date(1950, 1, 1).toordinal() + rng.randrange(50 * 365)
        eligible = "true" if len(seen) % 2 else "false"
        writer.writerow(
            (
                number,
                date.fromordinal(born).isoformat(),
                f"ทดสอบ นามสกุล{len(seen)}",
                f"{rng.randrange(1, 999)} Moo {rng.randrange(1, 20)}",
                rng.choice(DISTRICTS),
                f"participants/{HOSTS[len(seen) % 2]}",
                eligible,
                eligible,
                "false",
                "false",
                "",
                "",
            )
        )
    return out.getvalue()


async def _import(
    stub: service_pb2_grpc.IdentityServiceStub, text: str, *, job: str, batch: int
) -> tuple[import_cli.Progress, float]:
    errors = io.StringIO()
    started = time.perf_counter()
    progress = await import_cli.import_file(
        stub, io.StringIO(text), errors, job=job, batch_size=batch
    )
    return progress, time.perf_counter() - started


async def bench(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    if os.environ.get("OPENLOOP_POSTGRES_URL"):
        raise SystemExit("unset OPENLOOP_POSTGRES_URL: the benchmark starts its own server")
    postgres = EmbeddedPostgres(workdir / "pg")
    postgres.start()
    try:
        url = await postgres.create_database("bench_identity")
        await asyncio.to_thread(migrations.upgrade, MIGRATIONS_DIR, url)
        db = create_async_engine(url)

        async def enrolled() -> int:
            async with db.connect() as conn:
                count: int = (
                    await conn.execute(select(func.count()).select_from(citizens))
                ).scalar_one()
            return count

        main_file = cohort(args.rows, seed=1)
        baseline_file = cohort(args.baseline_rows, seed=2)
        try:
            with identity_process(url, workdir) as target:
                async with dev_operator_channel(
                    workdir, "identity", target, subject="bench"
                ) as channel:
                    stub = service_pb2_grpc.IdentityServiceStub(channel)
                    for host, role in zip(HOSTS, ("BANK", "E_WALLET"), strict=True):
                        await stub.CreateParticipant(
                            service_pb2.CreateParticipantRequest(
                                request_id=f"bench-{host}",
                                participant_id=host,
                                participant=resources_pb2.Participant(
                                    display_name=host,
                                    role=resources_pb2.ParticipantRole.Value(
                                        f"PARTICIPANT_ROLE_{role}"
                                    ),
                                ),
                            )
                        )
                    print(f"baseline: {args.baseline_rows:,} rows, one per batch", file=sys.stderr)
                    naive, naive_seconds = await _import(
                        stub, baseline_file, job="baseline", batch=1
                    )
                    print(f"import: {args.rows:,} rows, {args.batch} per batch", file=sys.stderr)
                    before = await enrolled()
                    first, seconds = await _import(stub, main_file, job="cohort", batch=args.batch)
                    after_first = await enrolled()
                    print("rerun of the same file", file=sys.stderr)
                    rerun, rerun_seconds = await _import(
                        stub, main_file, job="cohort", batch=args.batch
                    )
                    after_rerun = await enrolled()
        finally:
            await db.dispose()
    finally:
        postgres.stop()
    rate = (after_first - before) / seconds
    naive_rate = naive.enrolled / naive_seconds
    return {
        "rows": args.rows,
        "batch": args.batch,
        "enrolments_per_s": rate,
        "seconds": seconds,
        "refused": first.refused,
        "baseline_rows": args.baseline_rows,
        "baseline_enrolments_per_s": naive_rate,
        "baseline_refused": naive.refused,
        "speedup": rate / naive_rate if naive_rate else None,
        "target": f">= {TARGET:,.0f} enrolments/s",
        "met": rate >= TARGET and first.refused == 0,
        "rerun_rows_answered_with_citizen": rerun.enrolled,
        "rerun_refused": rerun.refused,
        "rerun_new_enrolments": after_rerun - after_first,
        "rerun_rows_per_s": rerun.done / rerun_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="citizens in the file")
    parser.add_argument("--batch", type=int, default=import_cli.DEFAULT_BATCH)
    parser.add_argument(
        "--baseline-rows", type=int, default=1500, help="citizens imported one per batch"
    )
    args = parser.parse_args()
    started_at = datetime.now(UTC).isoformat()
    with tempfile.TemporaryDirectory(prefix="openloop-bench-identity-") as workdir:
        figures = asyncio.run(bench(args, Path(workdir)))
    mark = "met" if figures["met"] else "MISSED"
    print()
    print(
        f"import     {figures['enrolments_per_s']:>10,.0f} enrolments/s  "
        f"({args.rows:,} rows in {figures['seconds']:.1f} s, refused {figures['refused']})"
    )
    print(f"baseline   {figures['baseline_enrolments_per_s']:>10,.0f} enrolments/s  (batch of 1)")
    print(f"target     {figures['target']}: {mark}")
    print(
        f"rerun      {figures['rerun_new_enrolments']} new enrolments; "
        f"{figures['rerun_rows_answered_with_citizen']:,} rows already there "
        f"({figures['rerun_rows_per_s']:,.0f} rows/s), refused {figures['rerun_refused']}"
    )
    REPORT_DIR.mkdir(exist_ok=True)
    path = REPORT_DIR / f"identity-import-{started_at.replace(':', '')}.json"
    path.write_text(
        json.dumps(
            {
                "started_at": started_at,
                "machine": f"{platform.machine()} {os.cpu_count()} cpus {platform.platform()}",
                "args": vars(args),
                "figures": figures,
            },
            indent=2,
        )
    )
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
