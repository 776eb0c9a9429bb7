"""Merchants, unique by their juristic tax ID, with their aliases (tax ID, phone)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.ids import new_merchant_id
from openloop_identity.domain.model import (
    Alias,
    AliasKind,
    Capability,
    Merchant,
    NewMerchant,
    PartyKind,
)
from openloop_identity.store import aliases, audit, rows
from openloop_identity.store.audit import AuditAction
from openloop_identity.store.participants import require_wallet_host
from openloop_identity.tables import merchants
from openloop_runtime.names import format_name
from openloop_runtime.operators import Operator


async def _by_request_id(conn: AsyncConnection, request_id: str) -> Row[Any] | None:
    result = await conn.execute(select(merchants).where(merchants.c.request_id == request_id))
    return result.first()


def _replayed(row: Row[Any], new: NewMerchant) -> Merchant:
    stored = rows.merchant(row)
    if stored.profile != new.profile:
        raise errors.idempotency_key_reused(new.request_id)
    return stored


async def create_merchant(engine: AsyncEngine, new: NewMerchant, operator: Operator) -> Merchant:
    """Create the merchant and claim its aliases in one transaction: a phone number another
    party holds fails the whole request, leaving nothing behind."""
    profile = new.profile
    async with engine.begin() as conn:
        existing = await _by_request_id(conn, new.request_id)
        if existing is not None:
            return _replayed(existing, new)
        await require_wallet_host(
            conn,
            profile.hosting_participant_id,
            field="merchant.hosting_participant",
            capability=Capability.ACQUIRER,
        )
        status = profile.tax_status
        inserted = await conn.execute(
            insert(merchants)
            .values(
                merchant_id=new_merchant_id(),
                request_id=new.request_id,
                tax_id=profile.tax_id,
                display_name=profile.display_name,
                district_code=profile.district_code,
                size_class=profile.size_class.value,
                hosting_participant_id=profile.hosting_participant_id,
                category=profile.category,
                channel=profile.channel.value,
                vat_registered=status.vat_registered,
                corporate_income_tax=status.corporate_income_tax,
                personal_income_tax_s40=status.personal_income_tax_s40,
                tax_years_filed=list(status.years_filed),
                settlement_account=profile.settlement_account,
                phone_token=profile.phone_token,
            )
            .on_conflict_do_nothing()
            .returning(*merchants.c)
        )
        row = inserted.first()
        if row is None:
            existing = await _by_request_id(conn, new.request_id)
            if existing is not None:
                return _replayed(existing, new)
            holder = await conn.execute(
                select(merchants.c.merchant_id).where(merchants.c.tax_id == profile.tax_id)
            )
            raise errors.merchant_already_exists(holder.scalar_one())
        merchant = rows.merchant(row)
        await aliases.claim(
            conn, Alias(AliasKind.TAX_ID, profile.tax_id), PartyKind.MERCHANT, merchant.merchant_id
        )
        if profile.phone_token is not None:
            await aliases.claim(
                conn,
                Alias(AliasKind.PHONE, profile.phone_token),
                PartyKind.MERCHANT,
                merchant.merchant_id,
            )
        await audit.record(
            conn,
            operator,
            AuditAction.CREATE_MERCHANT,
            format_name("merchants", merchant.merchant_id),
            request_id=new.request_id,
            details={
                "hosting_participant": format_name("participants", profile.hosting_participant_id)
            },
        )
        return merchant


async def get_merchant(engine: AsyncEngine, merchant_id: str) -> Merchant:
    async with engine.connect() as conn:
        result = await conn.execute(select(merchants).where(merchants.c.merchant_id == merchant_id))
        row = result.first()
    if row is None:
        raise errors.merchant_not_found(merchant_id)
    return rows.merchant(row)
