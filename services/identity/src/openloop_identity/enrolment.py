"""Enrolling a citizen: one transaction that verifies the identity assertion, spends its
token, seals the personal data and inserts the citizen with its alias.

Everything happens or nothing does: a refused assertion, an inactive host or a citizen ID
already enrolled rolls back the token's claim too, so the client can correct the request
and send the same token again. A retry of an enrolment that committed is recognised by its
request id and the digest of its token, and answered without spending anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_identity import errors
from openloop_identity.assertions import (
    AssertionReason,
    AssertionRejectedError,
    AssertionVerifier,
)
from openloop_identity.domain.assurance import Purpose
from openloop_identity.domain.ids import new_citizen_id
from openloop_identity.domain.model import Capability, Citizen, NewCitizen
from openloop_identity.pii import CitizenIdTokenizer
from openloop_identity.protection import KeyRing, envelope
from openloop_identity.store import audit, citizens
from openloop_identity.store.audit import AuditAction
from openloop_identity.store.participants import require_wallet_host
from openloop_identity.store.replays import PostgresReplayGuard
from openloop_runtime.names import format_name
from openloop_runtime.operators import Operator
from openloop_runtime.timestamps import utc_now


def personal_data_context(citizen_id: str) -> bytes:
    """What a citizen's sealed record is bound to: it opens only on its own row."""
    return format_name("citizens", citizen_id).encode()


class Enrolment:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        verifier: AssertionVerifier | None,
        tokenizer: CitizenIdTokenizer,
        keyring: KeyRing,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._verifier = verifier
        self._tokenizer = tokenizer
        self._keyring = keyring
        self._clock = clock

    async def enroll(self, new: NewCitizen, operator: Operator) -> Citizen:
        now = self._clock()
        async with self._engine.begin() as conn:
            existing = await citizens.by_request_id(conn, new.request_id)
            if existing is not None:
                return citizens.replayed(existing, new)
            if self._verifier is None:
                raise errors.assertion_rejected(
                    "ASSERTION_UNTRUSTED_ISSUER",
                    "this platform trusts no identity provider yet: no enrolment is possible",
                )
            try:
                verified = await self._verifier.verify(
                    new.identity_assertion,
                    purpose=Purpose.ENROLMENT,
                    now=now,
                    replay_guard=PostgresReplayGuard(conn),
                )
            except AssertionRejectedError as refused:
                if refused.reason is AssertionReason.REPLAYED:
                    # A concurrent copy of this very request may have spent the token and
                    # committed while we waited on its claim: then answer as a retry.
                    existing = await citizens.by_request_id(conn, new.request_id)
                    if existing is not None:
                        return citizens.replayed(existing, new)
                raise errors.assertion_rejected(refused.reason.value, str(refused)) from None
            if self._tokenizer.token(verified.pid) != new.citizen_token:
                raise errors.assertion_rejected(
                    "ASSERTION_SUBJECT_MISMATCH",
                    "the identity assertion is for another person than citizen_id",
                )
            await require_wallet_host(
                conn,
                new.hosting_participant_id,
                field="hosting_participant",
                capability=Capability.PAYER_BANK,
            )
            citizen_id = new_citizen_id()
            sealed = envelope.seal(
                new.personal_data.sealable(),
                keyring=self._keyring,
                context=personal_data_context(citizen_id),
            )
            citizen = await citizens.insert_citizen(
                conn,
                citizen_id,
                new,
                identity_assurance_level=verified.ial.value,
                personal_data=sealed.to_bytes(),
                personal_data_kek=sealed.kek_id,
            )
            if citizen is not None:
                await audit.record(
                    conn,
                    operator,
                    AuditAction.ENROLL_CITIZEN,
                    format_name("citizens", citizen_id),
                    request_id=new.request_id,
                    details={
                        "hosting_participant": format_name(
                            "participants", new.hosting_participant_id
                        )
                    },
                )
                return citizen
            # Raised inside the transaction, so the token's claim rolls back with it.
            existing = await citizens.by_request_id(conn, new.request_id)
            if existing is not None:
                return citizens.replayed(existing, new)  # raises: the retry differs
            raise errors.citizen_already_enrolled()
