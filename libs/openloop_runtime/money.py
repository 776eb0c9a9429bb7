"""Money on the wire: integer satang in THB, validated once at the edge of each service."""

from __future__ import annotations

import grpc

from openloop.common.v1 import money_pb2
from openloop_runtime.errors import DomainError, ErrorReason

CURRENCY = "THB"
LEDGER_THB = 764
"""The ledger number of THB, its ISO 4217 numeric code."""


def thb(satang: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=CURRENCY, amount_satang=satang)


def positive_satang(money: money_pb2.Money, *, field: str = "amount") -> int:
    """The amount in satang; INVALID_ARGUMENT unless it is a positive THB amount."""
    if money.currency_code != CURRENCY:
        raise DomainError(
            grpc.StatusCode.INVALID_ARGUMENT,
            ErrorReason.ERROR_REASON_CURRENCY_NOT_SUPPORTED,
            f"{field}.currency_code must be {CURRENCY}",
            {"field": f"{field}.currency_code"},
        )
    if money.amount_satang <= 0:
        raise DomainError(
            grpc.StatusCode.INVALID_ARGUMENT,
            ErrorReason.ERROR_REASON_INVALID_AMOUNT,
            f"{field}.amount_satang must be greater than zero",
            {"field": f"{field}.amount_satang"},
        )
    return money.amount_satang
