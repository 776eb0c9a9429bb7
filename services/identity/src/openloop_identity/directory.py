"""From what a bank holds (a citizen ID, a tax ID, a phone number, a scanned QR) to the
directory's alias, and from a merchant to the QR it displays.

A QR's PromptPay proxy (tag 29) is a phone number or a 13-digit ID; a bill payment's biller
ID (tag 30) is a company's tax ID followed by a two-digit suffix, as Thai banks issue them.
Either way the QR resolves through the same aliases as the bare identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from openloop.identity.v1 import service_pb2
from openloop_identity import errors, requests
from openloop_identity.domain import thai_qr
from openloop_identity.domain.model import Alias, AliasKind, Merchant
from openloop_identity.domain.thai_id import is_valid_juristic_tax_id
from openloop_identity.pii import CitizenIdTokenizer
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field

_TAX_ID_LENGTH = 13


@dataclass(frozen=True)
class AliasQuery:
    alias: Alias
    qr_amount_satang: int | None = None
    """Set when the alias came from a dynamic QR asking for this amount."""


def alias_query(
    request: service_pb2.ResolveAliasRequest, tokenizer: CitizenIdTokenizer
) -> AliasQuery:
    which = request.WhichOneof("alias")
    if which == "citizen_id":
        return AliasQuery(
            Alias(AliasKind.CITIZEN_ID, tokenizer.token(requests.citizen_id(request.citizen_id)))
        )
    if which == "tax_id":
        return AliasQuery(Alias(AliasKind.TAX_ID, requests.tax_id(request.tax_id, field="tax_id")))
    if which == "phone_number":
        number = requests.phone_number(request.phone_number, field="phone_number")
        return AliasQuery(Alias(AliasKind.PHONE, tokenizer.phone_token(number)))
    if which == "qr_payload":
        return _qr_query(request.qr_payload, tokenizer)
    raise invalid_field("alias", "set one of citizen_id, tax_id, phone_number or qr_payload")


def _qr_query(payload: str, tokenizer: CitizenIdTokenizer) -> AliasQuery:
    try:
        qr = thai_qr.parse(payload)
    except thai_qr.ThaiQrError as error:
        raise invalid_qr(error) from None
    account = qr.account
    if isinstance(account, thai_qr.BillPayment):
        tax_id = account.biller_id[:_TAX_ID_LENGTH]
        if not is_valid_juristic_tax_id(tax_id):
            raise errors.alias_not_found("BILLER_ID")
        alias = Alias(AliasKind.TAX_ID, tax_id)
    elif account.kind is thai_qr.ProxyKind.MOBILE:
        alias = Alias(AliasKind.PHONE, tokenizer.phone_token(account.value))
    elif account.kind is thai_qr.ProxyKind.NATIONAL_ID:
        alias = (
            Alias(AliasKind.TAX_ID, account.value)
            if is_valid_juristic_tax_id(account.value)
            else Alias(AliasKind.CITIZEN_ID, tokenizer.token(account.value))
        )
    else:
        # E-wallet IDs belong to the provider's own scheme, not to the program's directory.
        raise errors.alias_not_found("EWALLET_ID")
    dynamic = qr.point_of_initiation is thai_qr.PointOfInitiation.DYNAMIC
    return AliasQuery(alias, qr.amount_satang if dynamic else None)


def invalid_qr(error: thai_qr.ThaiQrError) -> DomainError:
    metadata = {"field": "qr_payload", "qr_reason": error.reason.value}
    if error.tag is not None:
        metadata["tag"] = error.tag
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT, ErrorReason.ERROR_REASON_INVALID_QR, str(error), metadata
    )


def merchant_qr(merchant: Merchant, amount_satang: int | None) -> str:
    """The merchant's PromptPay QR by tax ID: static, or dynamic asking for an amount."""
    try:
        qr = thai_qr.ThaiQr(
            point_of_initiation=thai_qr.PointOfInitiation.STATIC
            if amount_satang is None
            else thai_qr.PointOfInitiation.DYNAMIC,
            account=thai_qr.PromptPayCredit(thai_qr.ProxyKind.NATIONAL_ID, merchant.profile.tax_id),
            amount_satang=amount_satang,
        )
    except thai_qr.ThaiQrError as error:
        # The only client input is the amount (the tax ID was validated at registration).
        raise DomainError(
            grpc.StatusCode.INVALID_ARGUMENT,
            ErrorReason.ERROR_REASON_INVALID_AMOUNT,
            f"amount cannot be put in a Thai QR: {error}",
            {"field": "amount.amount_satang"},
        ) from None
    return thai_qr.generate(qr)
