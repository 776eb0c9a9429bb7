"""Dynamic linking: a payment authorisation names the payee and the amount it authorises.

Strong customer authentication (PSD2 RTS article 5; the Bank of Thailand's step-up rules
for mobile banking ask the same of the code a customer's authentication produces) requires
the authentication to be specific to the amount and the payee: what the customer confirmed
on their device is what the platform pays, and a token captured on the way (a log, a proxy,
a compromised app backend) cannot pay another shop or another amount. Without it, a token
signed for 50 baht to shop A pays 5,000 baht to shop B.

Two claims carry the payment, in the signed token:

- ``payee``: ``"merchants/{merchant}"``, the merchant's resource name. When the payer's app
  gives the payee as an alias (a scanned QR, a tax ID, a phone number), the claim names the
  merchant the alias resolves to, never the alias: the alias is how the customer found the
  shop, the resource name is who is paid, and a QR swapped for another shop's then names
  another merchant and is refused.
- ``amount``: ``{"currency_code": "THB", "satang": 25000}``, exactly these members; the
  satang a JSON integer from 1 to 2^63 - 1 (what ``Money.amount_satang`` holds). A JSON
  number with a fraction or an exponent (``25000.0``, ``2.5e4``) is refused even when its
  value is whole, as are strings and booleans: money is never a float, and two parsers must
  not disagree about what a customer signed.

Each claim present must equal the payment's (ASSERTION_PAYMENT_MISMATCH); a malformed one is
ASSERTION_MALFORMED; with binding required, a missing one is ASSERTION_MISSING_CLAIM. Every
refusal names the claim (``AssertionRejectedError.claim``). The check runs in the transaction
that spends the token, so a refused token is not spent and the payment it names can use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openloop_identity.assertions import AssertionReason, AssertionRejectedError
from openloop_runtime.names import is_valid_id

PAYEE_CLAIM = "payee"
AMOUNT_CLAIM = "amount"
CURRENCY_MEMBER = "currency_code"
SATANG_MEMBER = "satang"
MAX_SATANG = 2**63 - 1
"""The largest amount ``Money.amount_satang`` (int64) holds."""

_MERCHANT_PREFIX = "merchants/"
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class Amount:
    """An exact amount: whole satang (minor units) of an ISO 4217 currency."""

    currency_code: str
    satang: int

    def __str__(self) -> str:
        return f"{self.satang} satang {self.currency_code}"


@dataclass(frozen=True, slots=True)
class PaymentBinding:
    """The payment a token names; ``None`` where it names nothing."""

    payee: str | None
    amount: Amount | None


@dataclass(frozen=True, slots=True)
class PaymentTerms:
    """The payment being verified: the resolved payee, and the amount when the caller sent
    one (the gateway always does)."""

    payee: str
    amount: Amount | None


class AmountRequiredError(ValueError):
    """The token is bound to an amount, or binding is required, but the caller's request
    carries no amount to compare it with: the caller's mistake, not the token's."""


def binding_claims(payee: str, currency_code: str, satang: int) -> dict[str, Any]:
    """The claims a bank adds to a payment authorisation (the dev banks and tests sign them)."""
    return {
        PAYEE_CLAIM: payee,
        AMOUNT_CLAIM: {CURRENCY_MEMBER: currency_code, SATANG_MEMBER: satang},
    }


def _refused(reason: AssertionReason, claim: str, message: str) -> AssertionRejectedError:
    return AssertionRejectedError(reason, message, claim=claim)


def _payee(value: object) -> str:
    if not isinstance(value, str) or not (
        value.startswith(_MERCHANT_PREFIX) and is_valid_id(value[len(_MERCHANT_PREFIX) :])
    ):
        raise _refused(
            AssertionReason.MALFORMED,
            PAYEE_CLAIM,
            "claim 'payee' must be a merchant's resource name, 'merchants/{merchant}'",
        )
    return value


def _amount(value: object) -> Amount:
    shape = (
        "claim 'amount' must be an object with exactly 'currency_code' (three capital "
        "letters) and 'satang' (a JSON integer from 1 to 9223372036854775807)"
    )
    if not isinstance(value, Mapping) or set(value) != {CURRENCY_MEMBER, SATANG_MEMBER}:
        raise _refused(AssertionReason.MALFORMED, AMOUNT_CLAIM, shape)
    currency, satang = value[CURRENCY_MEMBER], value[SATANG_MEMBER]
    if not isinstance(currency, str) or not _CURRENCY_CODE.fullmatch(currency):
        raise _refused(AssertionReason.MALFORMED, AMOUNT_CLAIM, shape)
    # bool is an int in Python; JSON's true is not an amount.
    if isinstance(satang, bool) or not isinstance(satang, int) or not 0 < satang <= MAX_SATANG:
        raise _refused(AssertionReason.MALFORMED, AMOUNT_CLAIM, shape)
    return Amount(currency, satang)


def binding_of(claims: Mapping[str, Any]) -> PaymentBinding:
    """The payment a verified token's claims name; ASSERTION_MALFORMED if one is malformed."""
    payee = _payee(claims[PAYEE_CLAIM]) if PAYEE_CLAIM in claims else None
    amount = _amount(claims[AMOUNT_CLAIM]) if AMOUNT_CLAIM in claims else None
    return PaymentBinding(payee, amount)


def check_binding(
    claims: Mapping[str, Any], terms: PaymentTerms, *, required: bool
) -> PaymentBinding:
    """The token's binding, once it holds for ``terms``.

    Raises AssertionRejectedError (MALFORMED, MISSING_CLAIM when ``required`` and a claim is
    absent, PAYMENT_MISMATCH) or AmountRequiredError. Messages name claims, never values
    from the token, which a log may keep."""
    binding = binding_of(claims)
    if required:
        for claim, value in ((PAYEE_CLAIM, binding.payee), (AMOUNT_CLAIM, binding.amount)):
            if value is None:
                raise _refused(
                    AssertionReason.MISSING_CLAIM,
                    claim,
                    f"the authorisation lacks claim {claim!r}: a payment authorisation must "
                    "name the payee and the amount it authorises",
                )
    if binding.payee is not None and binding.payee != terms.payee:
        raise _refused(
            AssertionReason.PAYMENT_MISMATCH,
            PAYEE_CLAIM,
            f"the authorisation is for another payee than {terms.payee}",
        )
    if binding.amount is not None or required:
        if terms.amount is None:
            raise AmountRequiredError(
                "amount is required: the authorisation is bound to the payment's amount"
            )
        if binding.amount is not None and binding.amount != terms.amount:
            raise _refused(
                AssertionReason.PAYMENT_MISMATCH,
                AMOUNT_CLAIM,
                f"the authorisation is for another amount than this payment's {terms.amount}",
            )
    return binding
