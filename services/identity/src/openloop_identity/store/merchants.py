"""Merchants, unique by their juristic tax ID."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_identity import errors
from openloop_identity.domain.ids import new_merchant_id
from openloop_identity.domain.model import Merchant, NewMerchant
from openloop_identity.store import rows
from openloop_identity.store.participants import require_wallet_host
from openloop_identity.tables import merchants


async def _by_request_id(conn: AsyncConnection, request_id: str) -> Row[Any] | None:
    result = await conn.execute(select(merchants).where(merchants.c.request_id == request_id))
    return result.first()


def _replayed(row: Row[Any], new: NewMerchant) -> Merchant:
    stored = rows.merchant(row)
    if (
        stored.tax_id,
        stored.display_name,
        stored.district_code,
        stored.size_class,
        stored.hosting_participant_id,
    ) != (
        new.tax_id,
        new.display_name,
        new.district_code,
        new.size_class,
        new.hosting_participant_id,
    ):
        raise errors.idempotency_key_reused(new.request_id)
    return stored


async def create_merchant(engine: AsyncEngine, new: NewMerchant) -> Merchant:
    async with engine.begin() as conn:
        existing = await _by_request_id(conn, new.request_id)
        if existing is not None:
            return _replayed(existing, new)
        await require_wallet_host(
            conn, new.hosting_participant_id, field="merchant.hosting_participant"
        )
        inserted = await conn.execute(
            insert(merchants)
            .values(
                merchant_id=new_merchant_id(),
                request_id=new.request_id,
                tax_id=new.tax_id,
                display_name=new.display_name,
                district_code=new.district_code,
                size_class=new.size_class.value,
                hosting_participant_id=new.hosting_participant_id,
            )
            .on_conflict_do_nothing()
            .returning(*merchants.c)
        )
        row = inserted.first()
        if row is not None:
            return rows.merchant(row)
        existing = await _by_request_id(conn, new.request_id)
        if existing is not None:
            return _replayed(existing, new)
        holder = await conn.execute(
            select(merchants.c.merchant_id).where(merchants.c.tax_id == new.tax_id)
        )
        raise errors.merchant_already_exists(holder.scalar_one())


async def get_merchant(engine: AsyncEngine, merchant_id: str) -> Merchant:
    async with engine.connect() as conn:
        result = await conn.execute(select(merchants).where(merchants.c.merchant_id == merchant_id))
        row = result.first()
    if row is None:
        raise errors.merchant_not_found(merchant_id)
    return rows.merchant(row)
