"""A dynamic Thai QR asks for one amount: the payment made with it must be for that amount.

The shop's till makes a dynamic QR (point of initiation 12) for one sale and puts the price in
it (tag 54); the customer's app shows it and the customer confirms it. A payment whose amount
differs is not the one the shop presented, whatever the bank's request says, so it is refused
as the caller's mistake (INVALID_ARGUMENT, QR_AMOUNT_MISMATCH with both amounts). The check
needs only the request, so it runs before anything is read or written: the payer's
authorisation is not spent and the payment for the QR's amount still goes through. A static
QR (11) names no amount and leaves it to the customer.
"""

from __future__ import annotations

from openloop_identity import errors
from openloop_identity.directory import AliasQuery
from openloop_identity.payment_binding import Amount
from openloop_runtime.errors import invalid_field


def check_qr_amount(payee: AliasQuery, amount: Amount | None) -> None:
    """Refuse paying ``amount`` (None: the request has none) to a dynamic QR asking for
    another; any alias that is not a dynamic QR passes."""
    asked = payee.qr_amount_satang
    if asked is None:
        return
    if amount is None:
        raise invalid_field(
            "amount", "amount is required: the payee is a dynamic QR that asks for one"
        )
    if amount.satang != asked:
        raise errors.qr_amount_mismatch(asked, amount.satang)
