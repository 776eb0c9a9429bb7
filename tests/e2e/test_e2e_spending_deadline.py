"""The spending deadline (R10) through the whole mesh: the gateway records a citizen's first
use of the wallet when their first payment completes, and from six calendar months after it
the rules deny every further payment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import text

from openloop.gateway.v1 import resources_pb2
from openloop_runtime.db import create_engine
from tests.e2e.journeys import authorised_pay, funded_citizen_at_bank_a, metadata_of


async def test_payments_stop_six_months_after_the_first_use(platform):
    number, citizen = await funded_citizen_at_bank_a(platform)
    first = await platform.bank_a.Pay(authorised_pay(platform, "bank-a", number, citizen, 5_00))
    assert first.payment.state == resources_pb2.PaymentState.PAYMENT_STATE_COMPLETED
    # Still within the deadline.
    await platform.bank_a.Pay(authorised_pay(platform, "bank-a", number, citizen, 5_00))

    engine = create_engine(platform.mesh.layout.database_urls["gateway"], pool_size=1)
    try:
        async with engine.begin() as conn:
            recorded = await conn.scalar(
                text("SELECT first_use_time FROM first_uses WHERE payer = :payer"),
                {"payer": citizen},
            )
            assert recorded == first.payment.create_time.ToDatetime(tzinfo=UTC)
            # The citizen's first use, moved seven months back.
            await conn.execute(
                text("UPDATE first_uses SET first_use_time = :t WHERE payer = :payer"),
                {"t": datetime.now(UTC) - timedelta(days=213), "payer": citizen},
            )
    finally:
        await engine.dispose()

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.bank_a.Pay(authorised_pay(platform, "bank-a", number, citizen, 5_00))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    metadata = metadata_of(refused.value)
    assert metadata["rule_id"] == "R10"
    assert metadata["rule_reason"] == "SPENDING_DEADLINE_PASSED"
