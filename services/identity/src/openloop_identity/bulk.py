"""Bulk enrolment of citizens from the government registry's extract (ImportCitizens).

The registry is the source of truth for these rows, so no identity assertion is verified:
imported citizens carry no assurance level (``identity_assurance_level`` and
``assertion_digest`` NULL) until they present one. Everything else is as strict as
EnrollCitizen: the same field validation (:mod:`openloop_identity.requests`), the same keyed
citizen-ID token, personal data sealed per row under a fresh data key bound to the row
(:func:`openloop_identity.enrolment.personal_data_context`), and a CITIZEN_ID alias per
citizen.

Why it is fast: a batch is validated and sealed in Python, then written in ONE transaction
with two set-based statements: the hosts' roles and states, then a single
``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING`` that also claims the
aliases. Only rows that could not be written (a rerun, a duplicate, a refused host) cost a
third statement, which looks their request ids up to answer a rerun with its citizen.
:meth:`CitizenImport.import_stream` keeps two batches of a stream in flight, so one batch is
validated and sealed while the database writes the other.

Every row gets an answer, in order: the citizen it enrolled (by this batch or an earlier
run, recognised by its request id), or the reason, field and message it was refused for.
A refused row writes nothing; the other rows of its batch are not affected. Messages never
carry a citizen ID, name or birth date.

A batch that enrolls anyone writes one audit event (IMPORT_CITIZENS, resource ``citizens``)
in its transaction, naming the operator, how many rows it enrolled, the citizens' resource
names and their hosts; a batch that only replays earlier rows or refuses them all writes
none, as nothing changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import grpc
from sqlalchemy import ARRAY, Text, any_, cast, delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop.identity.v1 import service_pb2
from openloop_identity import errors, requests
from openloop_identity.domain.districts import DistrictTable
from openloop_identity.domain.ids import new_citizen_id
from openloop_identity.domain.model import (
    WALLET_HOSTING_ROLES,
    AliasKind,
    Capability,
    Eligibility,
    GuardianConsent,
    ParticipantState,
    PersonalData,
)
from openloop_identity.enrolment import personal_data_context
from openloop_identity.pii import CitizenIdTokenizer
from openloop_identity.protection import KeyRing, envelope
from openloop_identity.store import audit
from openloop_identity.store.audit import AuditAction
from openloop_identity.tables import citizens, participants
from openloop_runtime.errors import DomainError, ErrorReason
from openloop_runtime.names import format_name
from openloop_runtime.operators import Operator
from openloop_runtime.text import bounded_text
from openloop_runtime.timestamps import utc_now

MAX_BATCH = 5000
"""Rows in one ImportCitizens request; a larger batch is refused whole (BATCH_TOO_LARGE)."""
PIPELINE_DEPTH = 2
"""Batches of one stream processed at once: one sealing while the other is written."""

_log = logging.getLogger(__name__)

CitizenRecord = service_pb2.CitizenRecord
CitizenImportResult = service_pb2.CitizenImportResult

_INSERT = text(
    """
    WITH input AS (
        SELECT * FROM unnest(
            CAST(:citizen_id AS text[]), CAST(:request_id AS text[]),
            CAST(:citizen_token AS text[]), CAST(:home_district_code AS text[]),
            CAST(:hosting_participant_id AS text[]), CAST(:personal_data AS bytea[]),
            CAST(:personal_data_kek AS text[]), CAST(:income_within_limit AS boolean[]),
            CAST(:deposits_within_limit AS boolean[]), CAST(:excluded AS boolean[]),
            CAST(:earlier_phase_recipient AS boolean[]),
            CAST(:guardian_consent_reference AS text[]),
            CAST(:guardian_consent_time AS timestamptz[])
        ) AS t(citizen_id, request_id, citizen_token, home_district_code,
               hosting_participant_id, personal_data, personal_data_kek, income_within_limit,
               deposits_within_limit, excluded, earlier_phase_recipient,
               guardian_consent_reference, guardian_consent_time)
    ),
    inserted AS (
        INSERT INTO citizens (citizen_id, request_id, citizen_token, home_district_code,
            hosting_participant_id, personal_data, personal_data_kek, identity_assurance_level,
            assertion_digest, income_within_limit, deposits_within_limit, excluded,
            earlier_phase_recipient, guardian_consent_reference, guardian_consent_time)
        SELECT citizen_id, request_id, citizen_token, home_district_code,
            hosting_participant_id, personal_data, personal_data_kek, NULL, NULL,
            income_within_limit, deposits_within_limit, excluded, earlier_phase_recipient,
            guardian_consent_reference, guardian_consent_time
        FROM input
        ON CONFLICT DO NOTHING
        RETURNING citizen_id, citizen_token
    ),
    claimed AS (
        INSERT INTO aliases (alias_kind, alias_key, party_kind, party_id)
        SELECT 'CITIZEN_ID', citizen_token, 'CITIZEN', citizen_id FROM inserted
        ON CONFLICT DO NOTHING
        RETURNING party_id
    )
    SELECT inserted.citizen_id, claimed.party_id IS NOT NULL AS claimed
    FROM inserted LEFT JOIN claimed ON claimed.party_id = inserted.citizen_id
    """
)
"""One round trip for the whole batch: citizens and their aliases, skipping any row whose
request id or citizen-ID token is already taken (the caller then tells which)."""


def _check_size(batch: Sequence[CitizenRecord]) -> None:
    if len(batch) > MAX_BATCH:
        raise batch_too_large(len(batch))


def batch_too_large(size: int) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_BATCH_TOO_LARGE,
        f"a batch holds 1 to {MAX_BATCH} citizens, this one {size}; split it into smaller "
        "requests on the same stream",
        {"field": "citizens", "max": str(MAX_BATCH)},
    )


@dataclass(frozen=True, slots=True)
class _Row:
    """A validated record, ready to seal and write."""

    index: int
    request_id: str
    citizen_token: str
    home_district_code: str
    hosting_participant_id: str
    personal_data: PersonalData
    eligibility: Eligibility
    guardian_consent: GuardianConsent | None

    @property
    def identity(self) -> tuple[str, str, str]:
        """What a retry under the same request id must repeat (as EnrollCitizen compares)."""
        return (self.citizen_token, self.home_district_code, self.hosting_participant_id)


class CitizenImport:
    """Validates and writes batches of registry records; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        tokenizer: CitizenIdTokenizer,
        districts: DistrictTable,
        keyring: KeyRing,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._tokenizer = tokenizer
        self._districts = districts
        self._keyring = keyring
        self._clock = clock

    async def import_stream(
        self, batches: AsyncIterable[Sequence[CitizenRecord]], operator: Operator
    ) -> AsyncIterator[list[CitizenImportResult]]:
        """The results of each batch, in the order the batches came, with up to
        :data:`PIPELINE_DEPTH` batches processed at once. An oversized batch ends the stream
        with BATCH_TOO_LARGE after the results of the batches before it."""
        slots = asyncio.Semaphore(PIPELINE_DEPTH)
        queue: asyncio.Queue[asyncio.Task[list[CitizenImportResult]] | Exception | None]
        queue = asyncio.Queue()

        async def feed() -> None:
            try:
                async for batch in batches:
                    _check_size(batch)
                    await slots.acquire()
                    queue.put_nowait(asyncio.create_task(self.import_batch(batch, operator)))
            except Exception as error:  # handed to the consumer, in order
                queue.put_nowait(error)
                return
            queue.put_nowait(None)

        feeder = asyncio.create_task(feed())
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                results = await item
                slots.release()
                yield results
        finally:
            feeder.cancel()
            while not queue.empty():
                left = queue.get_nowait()
                if isinstance(left, asyncio.Task):
                    left.cancel()

    async def import_batch(
        self, records: Sequence[CitizenRecord], operator: Operator
    ) -> list[CitizenImportResult]:
        """One result per record, in order; the valid new rows written in one transaction."""
        _check_size(records)
        now = self._clock()
        today = now.astimezone(requests.THAILAND).date()
        results: list[CitizenImportResult | None] = [None] * len(records)
        first: dict[str, _Row] = {}
        repeats: list[tuple[int, _Row]] = []
        for index, record in enumerate(records):
            try:
                row = self._validate(index, record, now=now, today=today)
            except DomainError as error:
                results[index] = _refused(record.request_id, error)
                continue
            earlier = first.get(row.request_id)
            if earlier is None:
                first[row.request_id] = row
            elif earlier.identity == row.identity:
                repeats.append((index, earlier))
            else:
                results[index] = _refused(
                    row.request_id, errors.idempotency_key_reused(row.request_id)
                )
        if first:
            async with self._engine.begin() as conn:
                enrolled = await self._write(conn, list(first.values()), results)
                if enrolled:
                    await _record_import(conn, operator, enrolled, rows=len(records))
        for index, earlier in repeats:
            results[index] = results[earlier.index]
        answered = [result for result in results if result is not None]
        if len(answered) != len(records):
            raise RuntimeError("a citizen import row was left unanswered")
        _log.info(
            "citizen import batch",
            extra={
                "rows": len(records),
                "refused": sum(1 for result in answered if result.error_reason),
            },
        )
        return answered

    def _validate(self, index: int, record: CitizenRecord, *, now: datetime, today: date) -> _Row:
        key = requests.request_id(record.request_id)
        token = self._tokenizer.token(requests.citizen_id(record.citizen_id))
        born = requests.birth_date(record.birth_date, today=today)
        personal = PersonalData(
            full_name=bounded_text(
                record.full_name,
                field="full_name",
                max_length=requests.MAX_NAME_LENGTH,
                required=True,
            ),
            birth_date=born,
            address=bounded_text(
                record.address, field="address", max_length=requests.MAX_ADDRESS_LENGTH
            ),
        )
        district = requests.district_code(
            record.home_district_code, field="home_district_code", districts=self._districts
        )
        host = requests.hosting_participant(record.hosting_participant, field="hosting_participant")
        eligibility = record.eligibility
        return _Row(
            index=index,
            request_id=key,
            citizen_token=token,
            home_district_code=district,
            hosting_participant_id=host,
            personal_data=personal,
            eligibility=Eligibility(
                income_within_limit=eligibility.income_within_limit,
                deposits_within_limit=eligibility.deposits_within_limit,
                excluded=eligibility.excluded,
                earlier_phase_recipient=eligibility.earlier_phase_recipient,
            ),
            guardian_consent=requests.guardian_consent(
                record.guardian_consent if record.HasField("guardian_consent") else None,
                minor=requests.age_on(born, today) < requests.AGE_OF_MAJORITY,
                now=now,
            ),
        )

    async def _write(
        self,
        conn: AsyncConnection,
        rows: list[_Row],
        results: list[CitizenImportResult | None],
    ) -> list[tuple[_Row, str]]:
        """Answer every row of ``rows`` in ``results``; insert the new ones, and return
        them with their citizen ids.

        Inserts first and looks request ids up only for the rows that could not be
        inserted, so a first import costs two statements per batch whatever its size."""
        hosts = await _hosts(conn, {row.hosting_participant_id for row in rows})
        fresh: list[_Row] = []
        refusals: dict[int, tuple[DomainError, str]] = {}
        tokens: set[str] = set()
        for row in rows:
            refusal = _host_refusal(row.hosting_participant_id, hosts)
            if refusal is not None:
                refusals[row.index] = (refusal, "hosting_participant")
            elif row.citizen_token in tokens:
                refusals[row.index] = (errors.citizen_already_enrolled(), "citizen_id")
            else:
                tokens.add(row.citizen_token)
                fresh.append(row)
        conflicted, enrolled = await self._insert(conn, fresh, results) if fresh else ([], [])
        # A row not written may repeat a row an earlier run enrolled (even if its host has
        # been suspended since, as EnrollCitizen answers a retry).
        unwritten = conflicted + [row for row in rows if row.index in refusals]
        replayed = await _replays(conn, unwritten, results) if unwritten else set()
        for row in unwritten:
            if row.request_id in replayed:
                continue
            error, field = refusals.get(row.index, (errors.citizen_already_enrolled(), ""))
            results[row.index] = _refused(row.request_id, error, field)
        return enrolled

    async def _insert(
        self, conn: AsyncConnection, fresh: list[_Row], results: list[CitizenImportResult | None]
    ) -> tuple[list[_Row], list[tuple[_Row, str]]]:
        """Seal and insert ``fresh``, answering the rows written; the rows whose request id
        or citizen-ID token was taken already, and the rows written with their citizen ids."""
        # A consistent order keeps two concurrent batches from deadlocking on the indexes.
        fresh.sort(key=lambda row: row.citizen_token)
        ids = [new_citizen_id() for _ in fresh]
        sealed = [
            envelope.seal(
                row.personal_data.sealable(),
                keyring=self._keyring,
                context=personal_data_context(citizen_id),
            )
            for row, citizen_id in zip(fresh, ids, strict=True)
        ]
        consents = [row.guardian_consent for row in fresh]
        inserted = await conn.execute(
            _INSERT,
            {
                "citizen_id": ids,
                "request_id": [row.request_id for row in fresh],
                "citizen_token": [row.citizen_token for row in fresh],
                "home_district_code": [row.home_district_code for row in fresh],
                "hosting_participant_id": [row.hosting_participant_id for row in fresh],
                "personal_data": [record.to_bytes() for record in sealed],
                "personal_data_kek": [record.kek_id for record in sealed],
                "income_within_limit": [row.eligibility.income_within_limit for row in fresh],
                "deposits_within_limit": [row.eligibility.deposits_within_limit for row in fresh],
                "excluded": [row.eligibility.excluded for row in fresh],
                "earlier_phase_recipient": [
                    row.eligibility.earlier_phase_recipient for row in fresh
                ],
                "guardian_consent_reference": [c.reference if c else None for c in consents],
                "guardian_consent_time": [c.time if c else None for c in consents],
            },
        )
        claimed = {row.citizen_id: row.claimed for row in inserted}
        unclaimed = [citizen_id for citizen_id, was_claimed in claimed.items() if not was_claimed]
        if unclaimed:
            # The token names another party already: undo these rows only, as EnrollCitizen
            # would roll its transaction back.
            await conn.execute(delete(citizens).where(citizens.c.citizen_id == _any(unclaimed)))
        conflicted: list[_Row] = []
        enrolled: list[tuple[_Row, str]] = []
        for row, citizen_id in zip(fresh, ids, strict=True):
            if citizen_id not in claimed:
                conflicted.append(row)
            elif not claimed[citizen_id]:
                results[row.index] = _refused(
                    row.request_id, errors.alias_taken(AliasKind.CITIZEN_ID), "citizen_id"
                )
            else:
                results[row.index] = _enrolled(row.request_id, citizen_id)
                enrolled.append((row, citizen_id))
        return conflicted, enrolled


async def _record_import(
    conn: AsyncConnection, operator: Operator, enrolled: list[tuple[_Row, str]], *, rows: int
) -> None:
    """The batch's audit event: names and counts only, never a row's personal data."""
    ordered = sorted(enrolled, key=lambda pair: pair[0].index)
    await audit.record(
        conn,
        operator,
        AuditAction.IMPORT_CITIZENS,
        "citizens",
        details={
            "rows": rows,
            "enrolled": len(ordered),
            "citizens": [format_name("citizens", citizen_id) for _, citizen_id in ordered],
            "hosting_participants": sorted(
                {format_name("participants", row.hosting_participant_id) for row, _ in ordered}
            ),
        },
    )


_REPLAYS = text(
    """
    SELECT c.request_id, c.citizen_id, c.citizen_token, c.home_district_code,
        c.hosting_participant_id, c.assertion_digest
    FROM unnest(CAST(:request_ids AS text[])) AS wanted(request_id)
    JOIN citizens AS c ON c.request_id = wanted.request_id
    """
)
"""A join rather than ``= ANY``: whatever plan the prepared statement settles on while the
table is small (a scan filtered by the array would cost rows x array length), a join stays
an index or hash lookup."""


async def _replays(
    conn: AsyncConnection, rows: list[_Row], results: list[CitizenImportResult | None]
) -> set[str]:
    """Answer the rows whose request id enrolled a citizen already; their request ids."""
    by_request = {row.request_id: row for row in rows}
    found = await conn.execute(_REPLAYS, {"request_ids": list(by_request)})
    replayed: set[str] = set()
    for stored in found:
        row = by_request[stored.request_id]
        replayed.add(row.request_id)
        same = (
            stored.citizen_token,
            stored.home_district_code,
            stored.hosting_participant_id,
        ) == row.identity and stored.assertion_digest is None
        results[row.index] = (
            _enrolled(row.request_id, stored.citizen_id)
            if same
            else _refused(row.request_id, errors.idempotency_key_reused(row.request_id))
        )
    return replayed


async def _hosts(
    conn: AsyncConnection, host_ids: set[str]
) -> dict[str, tuple[str, str, list[str]]]:
    """(role, state, capabilities) of each participant that exists among ``host_ids``."""
    found = await conn.execute(
        select(
            participants.c.participant_id,
            participants.c.role,
            participants.c.state,
            participants.c.capabilities,
        ).where(participants.c.participant_id == _any(sorted(host_ids)))
    )
    return {row.participant_id: (row.role, row.state, row.capabilities) for row in found}


def _host_refusal(host_id: str, hosts: dict[str, tuple[str, str, list[str]]]) -> DomainError | None:
    """Why ``host_id`` may not host a citizen's wallet, as ``require_wallet_host`` would
    say; None if it may."""
    if host_id not in hosts:
        return errors.participant_not_found(host_id)
    role, state, capabilities = hosts[host_id]
    if state != ParticipantState.ACTIVE.value:
        return errors.participant_not_active(host_id, state)
    if role not in WALLET_HOSTING_ROLES:
        return errors.participant_cannot_host(host_id, role, field="hosting_participant")
    if Capability.PAYER_BANK.value not in capabilities:
        return errors.participant_lacks_capability(
            host_id, Capability.PAYER_BANK.value, field="hosting_participant"
        )
    return None


def _any(values: list[str]) -> Any:
    """``= ANY($1::text[])``: one bound array instead of one parameter per value."""
    return any_(cast(values, ARRAY(Text)))


def _enrolled(request_id: str, citizen_id: str) -> CitizenImportResult:
    return CitizenImportResult(request_id=request_id, citizen=format_name("citizens", citizen_id))


def _refused(request_id: str, error: DomainError, field: str = "") -> CitizenImportResult:
    """A refused row; ``field`` names the field at fault when the error itself does not."""
    return CitizenImportResult(
        request_id=request_id,
        error_reason=error.reason,
        error_field=error.metadata.get("field", field),
        error_message=error.message,
    )
