"""The facts the gateway gives the rules service about a round-1 payment.

Identity supplies both parties' facts; the gateway adds what it knows of the payment
itself. The goods category is the merchant's registered category (a scanned QR says
nothing about what is bought). The payer's first use of the wallet is not known here, so
``payer_first_use_time`` stays unset, which the rules read as "no earlier use": the
spending deadline (R10) is enforced once a service that knows the first use supplies it.
"""

from __future__ import annotations

from openloop.common.v1 import money_pb2, party_pb2
from openloop.rules.v1 import resources_pb2


def round1_payment_facts(
    payer: party_pb2.PartyFacts, payee: party_pb2.PartyFacts, amount: money_pb2.Money
) -> resources_pb2.PaymentFacts:
    """A citizen paying a merchant in person by scanning the merchant's QR."""
    return resources_pb2.PaymentFacts(
        payer=payer,
        payee=payee,
        amount=amount,
        channel=resources_pb2.Channel.CHANNEL_IN_PERSON,
        goods_category=payee.category,
    )
