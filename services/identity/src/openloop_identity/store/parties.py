"""The payment hot path: who pays whom, checked in one query.

Every payment asks this, so it is a single read on a single connection: the
acting participant's state, the payer citizen, the payee merchant and its host's state come back
as one row (outer joins keep the row when either party is missing), and the
checks run on that row in memory. It writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.model import (
    MerchantChannel,
    MerchantSizeClass,
    ParticipantState,
    PartyFacts,
    PartyKind,
    PaymentParties,
)
from openloop_identity.domain.wallets import citizen_wallet_account, merchant_wallet_account
from openloop_identity.tables import citizens, merchants, participants


@dataclass(frozen=True)
class PaymentPartiesRecord:
    """The checked parties, plus what only the identity service itself may look at: the
    payer's citizen-ID token (to match an authorisation's ``pid``) and sealed personal data
    (to count the payer's age)."""

    parties: PaymentParties
    payer_token: str
    payer_personal_data: bytes | None


_acting_state = (
    select(participants.c.state)
    .where(participants.c.participant_id == bindparam("acting_participant_id"))
    .scalar_subquery()
)
_anchor = select(literal(1).label("anchor")).subquery("anchor")
_payee_host = participants.alias("payee_host")
_PARTIES = select(
    _acting_state.label("acting_state"),
    citizens.c.citizen_id,
    citizens.c.home_district_code,
    citizens.c.hosting_participant_id.label("payer_host"),
    citizens.c.erase_time,
    citizens.c.wallet_generation,
    citizens.c.wallet_move_id,
    citizens.c.citizen_token,
    citizens.c.personal_data,
    citizens.c.identity_assurance_level,
    merchants.c.merchant_id,
    merchants.c.district_code,
    merchants.c.size_class,
    merchants.c.category,
    merchants.c.channel,
    merchants.c.vat_registered,
    merchants.c.corporate_income_tax,
    merchants.c.personal_income_tax_s40,
    merchants.c.tax_years_filed,
    merchants.c.hosting_participant_id.label("payee_host"),
    _payee_host.c.state.label("payee_host_state"),
).select_from(
    _anchor.outerjoin(citizens, citizens.c.citizen_id == bindparam("payer_id"))
    .outerjoin(merchants, merchants.c.merchant_id == bindparam("payee_id"))
    .outerjoin(_payee_host, _payee_host.c.participant_id == merchants.c.hosting_participant_id)
)
"""Built once, with the three ids bound per call: every payment runs it."""


async def verify_payment_parties(
    engine: AsyncEngine, *, acting_participant_id: str, payer_id: str, payee_id: str
) -> PaymentPartiesRecord:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                _PARTIES,
                {
                    "acting_participant_id": acting_participant_id,
                    "payer_id": payer_id,
                    "payee_id": payee_id,
                },
            )
        ).one()

    if row.acting_state is None:
        raise errors.participant_not_found(acting_participant_id)
    if row.acting_state != ParticipantState.ACTIVE.value:
        raise errors.participant_not_active(acting_participant_id, row.acting_state)
    if row.citizen_id is None or row.payer_host != acting_participant_id:
        # Another participant's citizen answers exactly like one that does not exist.
        raise errors.citizen_not_found(payer_id)
    if row.erase_time is not None:
        raise errors.citizen_data_erased(payer_id)
    if row.wallet_move_id is not None:
        raise errors.wallet_move_in_progress(payer_id, row.wallet_move_id)
    if row.merchant_id is None:
        raise errors.merchant_not_found(payee_id)
    if row.payee_host_state != ParticipantState.ACTIVE.value:
        # A suspended or closed participant may not receive money either.
        raise errors.participant_not_active(row.payee_host, row.payee_host_state)
    parties = PaymentParties(
        payer=PartyFacts(
            kind=PartyKind.CITIZEN,
            party_id=row.citizen_id,
            hosting_participant_id=row.payer_host,
            district_code=row.home_district_code,
            size_class=None,
            identity_verified=row.identity_assurance_level is not None,
        ),
        payee=PartyFacts(
            kind=PartyKind.MERCHANT,
            party_id=row.merchant_id,
            hosting_participant_id=row.payee_host,
            district_code=row.district_code,
            size_class=MerchantSizeClass(row.size_class),
            category=row.category,
            sells_in_person=row.channel == MerchantChannel.IN_PERSON.value,
            tax_registered=bool(
                row.vat_registered or row.corporate_income_tax or row.personal_income_tax_s40
            ),
            tax_years_filed=tuple(sorted(row.tax_years_filed)),
        ),
        payer_wallet_account=citizen_wallet_account(row.citizen_id, row.wallet_generation),
        payee_wallet_account=merchant_wallet_account(row.merchant_id),
    )
    sealed = None if row.personal_data is None else bytes(row.personal_data)
    return PaymentPartiesRecord(parties, row.citizen_token, sealed)
