"""Enrol a registry extract (CSV) through ImportCitizens: the operator's bulk-import tool.

    python -m openloop_identity.import_cli --target HOST:PORT --file cohort.csv \\
        --errors errors.csv --key-file operator.pem --kid ops-1 --operator alice \\
        [--batch 2000] [--job NAME]

Importing is an operator's act: the call carries an ``identity-operator`` token (EdDSA,
audience ``openloop-identity``) signed with the private key in ``--key-file``, whose public
key identity trusts under ``--kid`` (``OPENLOOP_IDENTITY_OPERATOR_KEYS``); ``--operator`` is
who you are, as identity logs it.

Each data row's request id is ``{job}:{row number}`` (the first row under the header is 1),
so running the same file again after an interruption is idempotent: rows already enrolled
come back with their citizen and nothing is enrolled twice. That is why there is no
``--resume-from``: a full rerun is cheap. Rows go in batches over one streaming call, at
most two batches in flight, so the client reads and encodes while the server writes.

Refused rows go to the error file as CSV (row number, request id, reason, field, message);
the file never holds a citizen ID, name or other personal data from the row. Rows the tool
cannot read itself are written at once, the server's refusals as batches come back, so the
file is not in row order. Exit status:
0 when every row is enrolled, 1 when some were refused, 2 when the import could not finish.
The standard library's ``csv`` and ``argparse`` do the parsing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from openloop.identity.v1 import resources_pb2, service_pb2, service_pb2_grpc
from openloop_identity import access
from openloop_identity.bulk import MAX_BATCH
from openloop_runtime.operator_calls import OperatorToken, operator_channel

HEADER = (
    "citizen_id",
    "birth_date",
    "full_name",
    "address",
    "home_district_code",
    "hosting_participant",
    "income_within_limit",
    "deposits_within_limit",
    "excluded",
    "earlier_phase_recipient",
    "guardian_consent_reference",
    "guardian_consent_time",
)
ERROR_HEADER = ("row_number", "request_id", "reason", "field", "message")
IN_FLIGHT = 2
DEFAULT_BATCH = 2000
MAX_JOB_LENGTH = 100
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0", ""})
_FLAGS = ("income_within_limit", "deposits_within_limit", "excluded", "earlier_phase_recipient")

EXIT_ALL_ENROLLED = 0
EXIT_SOME_REFUSED = 1
EXIT_FAILED = 2


class ImportFileError(ValueError):
    """The file cannot be imported at all (``reason`` says why): nothing was sent."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _RowError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ImportStub(Protocol):
    """What the tool needs of an IdentityService stub."""

    def ImportCitizens(  # noqa: N802 - the gRPC method's name
        self, request_iterator: AsyncIterator[service_pb2.ImportCitizensRequest]
    ) -> AsyncIterator[service_pb2.ImportCitizensResponse]: ...


@dataclass
class Progress:
    """Counts so far; ``enrolled`` includes rows enrolled by an earlier run of the file."""

    rows: int = 0
    enrolled: int = 0
    refused: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.enrolled + self.refused

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


def record_from_row(row: dict[str, str], request_id: str) -> service_pb2.CitizenRecord:
    """The CitizenRecord of one CSV row; ``_RowError`` naming the field it cannot read.
    Everything else (check digit, district, age) the server validates."""
    flags = {name: _flag(row[name], name) for name in _FLAGS}
    record = service_pb2.CitizenRecord(
        request_id=request_id,
        citizen_id=row["citizen_id"].strip(),
        birth_date=row["birth_date"].strip(),
        full_name=row["full_name"],
        address=row["address"],
        home_district_code=row["home_district_code"].strip(),
        hosting_participant=row["hosting_participant"].strip(),
        eligibility=resources_pb2.EligibilityAttestations(**flags),
    )
    reference = row["guardian_consent_reference"].strip()
    given = row["guardian_consent_time"].strip()
    if reference or given:
        consent = resources_pb2.GuardianConsent(consent_reference=reference)
        if given:
            consent.consent_time.CopyFrom(_timestamp(given))
        record.guardian_consent.CopyFrom(consent)
    return record


def _flag(value: str, name: str) -> bool:
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise _RowError(name, f"{name} must be true or false (or empty for false)")


def _timestamp(value: str) -> Timestamp:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _RowError(
            "guardian_consent_time",
            "guardian_consent_time must be an ISO 8601 time with its offset, "
            "for example 2025-01-31T10:00:00+07:00",
        ) from None
    if moment.tzinfo is None:
        raise _RowError("guardian_consent_time", "guardian_consent_time needs a UTC offset")
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def _rows(source: IO[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, row) of each data row; the header is checked before the first is read."""
    reader = csv.DictReader(source)
    missing = [name for name in HEADER if name not in (reader.fieldnames or ())]
    if missing:
        raise ImportFileError(
            "IMPORT_FILE_HEADER", "the file's header lacks column(s): " + ", ".join(missing)
        )
    return (
        (number, {name: row.get(name) or "" for name in HEADER})
        for number, row in enumerate(reader, start=1)
    )


class _ErrorFile:
    def __init__(self, sink: IO[str]) -> None:
        self._writer = csv.writer(sink)
        self._writer.writerow(ERROR_HEADER)

    def write(self, number: int, request_id: str, reason: str, field: str, message: str) -> None:
        self._writer.writerow((number, request_id, reason, field, message))


async def import_file(
    stub: ImportStub,
    source: IO[str],
    error_sink: IO[str],
    *,
    job: str,
    batch_size: int = DEFAULT_BATCH,
    report: bool = True,
) -> Progress:
    """Send every row of ``source`` and record the refused ones in ``error_sink``."""
    if not 1 <= len(job) <= MAX_JOB_LENGTH or not job.isprintable() or ":" in job:
        raise ImportFileError(
            "IMPORT_JOB_NAME",
            f"--job must be 1 to {MAX_JOB_LENGTH} printable characters without ':'",
        )
    errors = _ErrorFile(error_sink)
    progress = Progress()
    slots = asyncio.Semaphore(IN_FLIGHT)
    sent: deque[list[int]] = deque()
    """Row numbers of each batch in flight, oldest first."""
    last_report = time.monotonic()
    rows = _rows(source)

    async def batches() -> AsyncIterator[service_pb2.ImportCitizensRequest]:
        numbers: list[int] = []
        records: list[service_pb2.CitizenRecord] = []
        for number, row in rows:
            progress.rows += 1
            request_id = f"{job}:{number}"
            try:
                records.append(record_from_row(row, request_id))
            except _RowError as error:
                progress.refused += 1
                errors.write(number, request_id, "INVALID_FIELD", error.field, str(error))
                continue
            numbers.append(number)
            if len(records) == batch_size:
                await slots.acquire()
                sent.append(numbers)
                yield service_pb2.ImportCitizensRequest(citizens=records)
                numbers, records = [], []
        if records:
            await slots.acquire()
            sent.append(numbers)
            yield service_pb2.ImportCitizensRequest(citizens=records)

    async for response in stub.ImportCitizens(batches()):
        numbers = sent.popleft()
        slots.release()
        if len(response.results) != len(numbers):
            raise RuntimeError("the server answered a batch with the wrong number of results")
        for number, result in zip(numbers, response.results, strict=True):
            if result.citizen:
                progress.enrolled += 1
            else:
                progress.refused += 1
                errors.write(
                    number,
                    result.request_id,
                    result.error_reason,
                    result.error_field,
                    result.error_message,
                )
        now = time.monotonic()
        if report and now - last_report >= 1.0:
            last_report = now
            _print_progress(progress)
    if sent:
        raise RuntimeError("the server ended the stream before answering every batch")
    if report:
        _print_progress(progress)
    return progress


def _print_progress(progress: Progress) -> None:
    print(
        f"{progress.rate():,.0f} rows/s  done {progress.done:,}  "
        f"enrolled {progress.enrolled:,}  refused {progress.refused:,}",
        file=sys.stderr,
        flush=True,
    )


def exit_status(progress: Progress) -> int:
    return EXIT_SOME_REFUSED if progress.refused else EXIT_ALL_ENROLLED


async def _run(args: argparse.Namespace, key: bytes, source: IO[str], sink: IO[str]) -> int:
    token = OperatorToken(
        key,
        kid=args.kid,
        subject=args.operator,
        role=access.Role.OPERATOR,
        audience=access.AUDIENCE,
    )
    async with operator_channel(args.target, token) as channel:
        stub = service_pb2_grpc.IdentityServiceStub(channel)
        progress = await import_file(
            stub, source, sink, job=args.job or Path(args.file).stem, batch_size=args.batch
        )
    return exit_status(progress)


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m openloop_identity.import_cli",
        description=(
            "Enrol the citizens of a registry CSV through ImportCitizens. Request ids are "
            "JOB:ROW, so rerunning the same file after an interruption is safe and cheap: "
            "rows already enrolled are answered with their citizen and not enrolled again "
            "(there is no --resume-from; just run the whole file again). Exit status 0: all "
            "enrolled; 1: some rows refused (see --errors); 2: the import did not finish."
        ),
    )
    command.add_argument("--target", required=True, help="identity service HOST:PORT")
    command.add_argument("--file", required=True, help="CSV with header " + ",".join(HEADER))
    command.add_argument("--errors", required=True, help="CSV to write refused rows to")
    command.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help=f"rows per request, 1 to {MAX_BATCH} (default {DEFAULT_BATCH})",
    )
    command.add_argument(
        "--job", default="", help="request id prefix; defaults to the file name without suffix"
    )
    command.add_argument(
        "--key-file", required=True, help="the operator's Ed25519 private key (PEM)"
    )
    command.add_argument("--kid", default="ops-1", help="the id identity trusts the key under")
    command.add_argument("--operator", required=True, help="who is importing (the token's sub)")
    return command


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not 1 <= args.batch <= MAX_BATCH:
        print(f"--batch must be 1 to {MAX_BATCH}", file=sys.stderr)
        return EXIT_FAILED
    try:
        key = Path(args.key_file).read_bytes()
        with (
            Path(args.file).open(newline="", encoding="utf-8") as source,
            Path(args.errors).open("w", newline="", encoding="utf-8") as sink,
        ):
            return asyncio.run(_run(args, key, source, sink))
    except ImportFileError as error:
        print(f"cannot import: {error}", file=sys.stderr)
    except OSError as error:
        print(f"cannot read or write a file: {error.strerror} ({error.filename})", file=sys.stderr)
    except grpc.aio.AioRpcError as error:
        print(f"import stopped: {error.code().name}: {error.details()}", file=sys.stderr)
    except RuntimeError as error:
        print(f"import stopped: {error}", file=sys.stderr)
    print(
        "run the same command again to finish: enrolled rows are not enrolled twice",
        file=sys.stderr,
    )
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
