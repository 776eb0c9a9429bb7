"""Verify for payment: who pays whom, on whose authority, with only the facts the rules need.

Every payment comes here (from the gateway). The parties are checked in one read (the acting
participant is active and hosts the payer; the payee is a merchant whose host is active);
then the payer's authorisation is verified and spent; then the payer's age on the payment
date is counted from the sealed birth date, which is opened in memory and never returned.

The authorisation is a compact JWS whose ``pid`` is the payer's citizen ID, signed either by
the acting participant itself (``iss`` = ``participants/{id}``, with a key it registered as an
ASSERTION_KEY credential, valid and not revoked) or by a trusted identity provider. A
participant can therefore only vouch for payments it makes; the assurance minimum for
payments (AAL 2.1 by default) and the single use of each token are the verifier's checks.
The token also names the payee and amount it authorises (``payment_binding``): they must be
this payment's, checked in the transaction that spends the token, so a refused token is not
spent.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_identity import errors
from openloop_identity.assertions import (
    AssertionReason,
    AssertionRejectedError,
    AssertionVerifier,
    CallerSuppliedGuard,
    VerifiedAssertion,
)
from openloop_identity.domain.assurance import AssurancePolicy, Purpose
from openloop_identity.domain.model import Alias, PartyKind, PaymentParties
from openloop_identity.enrolment import personal_data_context
from openloop_identity.payment_binding import (
    Amount,
    AmountRequiredError,
    PaymentTerms,
    check_binding,
)
from openloop_identity.pii import CitizenIdTokenizer
from openloop_identity.protection import KeyRing, envelope
from openloop_identity.requests import THAILAND, age_on
from openloop_identity.store import aliases, parties
from openloop_identity.store.replays import PostgresReplayGuard
from openloop_identity.tables import participant_credentials
from openloop_runtime.errors import invalid_field
from openloop_runtime.names import format_name
from openloop_runtime.timestamps import utc_now

KEY_CACHE_SECONDS = 5.0
"""How long a participant's registered keys are reused: a revocation takes effect within it."""
KEY_REFRESH_SECONDS = 1.0
"""The least time between two reads of a participant's keys caused by unknown key ids: a key
registered since the last read is usable within it."""


class PaymentAuthorizer:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        audience: str,
        policy: AssurancePolicy,
        identity_providers: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self._engine = engine
        self._audience = audience
        self._policy = policy
        self._providers = (
            AssertionVerifier(
                identity_providers,
                audience=audience,
                replay_guard=CallerSuppliedGuard(),
                policy=policy,
            )
            if identity_providers
            else None
        )
        self._provider_issuers = frozenset(identity_providers)
        self._participants: dict[str, tuple[float, AssertionVerifier | None]] = {}

    async def verify(
        self, token: str, *, acting_participant_id: str, now: datetime, guard: PostgresReplayGuard
    ) -> VerifiedAssertion:
        issuer = _unverified_issuer(token)
        own = format_name("participants", acting_participant_id)
        if issuer == own:
            try:
                return await self._verify_with_participant_keys(
                    token, acting_participant_id, now, guard, fresh=False
                )
            except AssertionRejectedError as refused:
                if refused.reason is not AssertionReason.UNKNOWN_KEY:
                    raise
            # A key registered since the keys were cached: read them again, once. (Nothing
            # was spent: the token's jti is claimed only after every other check.)
            return await self._verify_with_participant_keys(
                token, acting_participant_id, now, guard, fresh=True
            )
        if issuer in self._provider_issuers and self._providers is not None:
            return await self._providers.verify(
                token, purpose=Purpose.PAYMENT, now=now, replay_guard=guard
            )
        raise AssertionRejectedError(
            AssertionReason.UNTRUSTED_ISSUER,
            f"a payment authorisation must be issued by {own} or a trusted identity provider",
        )

    async def _verify_with_participant_keys(
        self,
        token: str,
        participant_id: str,
        now: datetime,
        guard: PostgresReplayGuard,
        *,
        fresh: bool,
    ) -> VerifiedAssertion:
        verifier = await self._participant_verifier(participant_id, now, fresh=fresh)
        if verifier is None:
            raise AssertionRejectedError(
                AssertionReason.UNKNOWN_KEY,
                f"participants/{participant_id} has no valid assertion key registered "
                "(CreateParticipantCredential)",
            )
        return await verifier.verify(token, purpose=Purpose.PAYMENT, now=now, replay_guard=guard)

    async def _participant_verifier(
        self, participant_id: str, now: datetime, *, fresh: bool
    ) -> AssertionVerifier | None:
        cached = self._participants.get(participant_id)
        if cached is not None:
            age = time.monotonic() - cached[0]
            # A fresh read is forced by an unknown kid, at most once a second per participant,
            # so a flood of tokens with made-up kids costs one query a second, not one each.
            if age < (KEY_REFRESH_SECONDS if fresh else KEY_CACHE_SECONDS):
                return cached[1]
        table = participant_credentials
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(table.c.public_jwk).where(
                    table.c.participant_id == participant_id,
                    table.c.kind == "ASSERTION_KEY",
                    table.c.revoke_time.is_(None),
                    table.c.not_before <= now,
                    table.c.not_after > now,
                )
            )
            keys = [json.loads(jwk) for (jwk,) in result]
        verifier = (
            AssertionVerifier(
                {format_name("participants", participant_id): {"keys": keys}},
                audience=self._audience,
                replay_guard=CallerSuppliedGuard(),
                policy=self._policy,
            )
            if keys
            else None
        )
        self._participants[participant_id] = (time.monotonic(), verifier)
        return verifier


def _unverified_issuer(token: str) -> str:
    """The ``iss`` the token claims, to choose whose keys must have signed it."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AssertionRejectedError(
            AssertionReason.MALFORMED, "the authorisation is not a compact JWS"
        ) from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str):
        raise AssertionRejectedError(AssertionReason.MISSING_CLAIM, "the token has no 'iss'")
    return issuer


class PaymentVerification:
    def __init__(
        self,
        engine: AsyncEngine,
        reader: AsyncEngine,
        *,
        tokenizer: CitizenIdTokenizer,
        keyring: KeyRing,
        authorizer: PaymentAuthorizer,
        require_authorization: bool,
        require_binding: bool,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._reader = reader
        self._tokenizer = tokenizer
        self._keyring = keyring
        self._authorizer = authorizer
        self._require_authorization = require_authorization
        self._require_binding = require_binding
        self._clock = clock

    async def payee_of(self, alias: Alias) -> str:
        """The merchant an alias names; INVALID_ARGUMENT if it names a citizen."""
        party = await aliases.resolve(self._reader, alias)
        if party.kind is not PartyKind.MERCHANT:
            raise errors.payee_not_a_merchant()
        return party.party_id

    async def verify(
        self,
        *,
        acting_participant_id: str,
        payer_id: str,
        payee_id: str,
        authorization: str,
        amount: Amount | None = None,
        request_binding: str = "",
    ) -> PaymentParties:
        """The parties' facts, once the payer's authorisation of paying ``amount`` (``None``:
        the caller sent none) to ``payee_id`` (resolved from any alias) is verified and
        spent."""
        if amount is None and self._require_binding:
            raise invalid_field("amount", "amount is required: the payment's amount")
        record = await parties.verify_payment_parties(
            self._reader,
            acting_participant_id=acting_participant_id,
            payer_id=payer_id,
            payee_id=payee_id,
        )
        now = self._clock()
        level = ""
        if authorization:
            terms = PaymentTerms(format_name("merchants", payee_id), amount)
            level = await self._authorize(
                authorization,
                acting_participant_id,
                record,
                terms=terms,
                now=now,
                request_binding=request_binding,
            )
        elif self._require_authorization:
            raise errors.assertion_rejected(
                "ASSERTION_MISSING_CLAIM",
                "payer_authorization is required: the payer's authorisation of this payment",
                field="payer_authorization",
            )
        payer = record.parties.payer
        age = self._age(payer_id, record.payer_personal_data, now.astimezone(THAILAND).date())
        return dataclasses.replace(
            record.parties,
            payer=dataclasses.replace(payer, age_years=age, authentication_level=level),
        )

    async def _authorize(
        self,
        token: str,
        acting_participant_id: str,
        record: parties.PaymentPartiesRecord,
        *,
        terms: PaymentTerms,
        now: datetime,
        request_binding: str,
    ) -> str:
        async with self._engine.begin() as conn:
            try:
                verified = await self._authorizer.verify(
                    token,
                    acting_participant_id=acting_participant_id,
                    now=now,
                    guard=PostgresReplayGuard(conn, request_binding),
                )
            except AssertionRejectedError as refused:
                raise errors.assertion_rejected(
                    refused.reason.value, str(refused), field="payer_authorization"
                ) from None
            if self._tokenizer.token(verified.pid) != record.payer_token:
                raise errors.assertion_rejected(
                    "ASSERTION_SUBJECT_MISMATCH",
                    "the authorisation is for another person than the payer",
                    field="payer_authorization",
                )
            # Raising here rolls the transaction back, and the jti claim with it: a token
            # refused for another payment is not spent, so the one it names can still use it.
            try:
                check_binding(verified.claims, terms, required=self._require_binding)
            except AssertionRejectedError as refused:
                raise errors.assertion_rejected(
                    refused.reason.value,
                    str(refused),
                    field="payer_authorization",
                    claim=refused.claim,
                ) from None
            except AmountRequiredError as missing:
                raise invalid_field("amount", str(missing)) from None
        return verified.aal.value

    def _age(self, citizen_id: str, sealed: bytes | None, today: date) -> int:
        if sealed is None:
            return 0  # enrolled before birth dates were collected
        opened = envelope.open(
            sealed, keyring=self._keyring, context=personal_data_context(citizen_id)
        )
        return age_on(date.fromisoformat(opened["birth_date"]), today)
