"""The facts the gateway gives the rules service about a round-1 payment.

Identity supplies both parties' facts; the gateway adds what it knows of the payment
itself. The goods category is the merchant's registered category (a scanned QR says
nothing about what is bought). The payer's first use of the wallet is the time their first
completed payment was made (accepted, not completed), which the gateway records
(``store.first_uses``); before it, ``payer_first_use_time`` stays unset, which the rules
read as "no earlier use", and the spending deadline (R10) counts from it.
"""

from __future__ import annotations

from datetime import datetime

from openloop.common.v1 import money_pb2, party_pb2
from openloop.rules.v1 import resources_pb2
from openloop_runtime.timestamps import to_timestamp


def _channel(payee: party_pb2.PartyFacts) -> resources_pb2.Channel.ValueType:
    """How the payment is made, as far as the platform knows: by the merchant's registered
    channel (nothing in a Pay request shows where the QR was scanned). A merchant that sells
    online is paid online, which R2 denies in round 1."""
    if payee.sells_in_person:
        return resources_pb2.Channel.CHANNEL_IN_PERSON
    return resources_pb2.Channel.CHANNEL_ONLINE


def round1_payment_facts(
    payer: party_pb2.PartyFacts,
    payee: party_pb2.PartyFacts,
    amount: money_pb2.Money,
    first_use: datetime | None,
) -> resources_pb2.PaymentFacts:
    """A citizen paying a merchant (by scanning its QR, in person unless it sells online only)."""
    facts = resources_pb2.PaymentFacts(
        payer=payer,
        payee=payee,
        amount=amount,
        channel=_channel(payee),
        goods_category=payee.category,
    )
    if first_use is not None:
        facts.payer_first_use_time.CopyFrom(to_timestamp(first_use))
    return facts
