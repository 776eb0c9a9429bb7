"""The facts a rule's CEL condition can read, built from the PaymentFacts proto.

Rule sets see plain values, not protos:

==========================  ==============================================================
``payer`` / ``payee``        maps with ``party`` ("citizens/..."), ``kind`` ("CITIZEN" or
                             "MERCHANT"), ``hosting_participant`` ("participants/..."),
                             ``district_code`` ("1001") and, for merchants, ``size_class``
                             ("SMALL_SHOP" or "LARGE_CHAIN")
``amount_satang``            int
``currency_code``            "THB"
``channel``                  "IN_PERSON" or "ONLINE"
``payment_time``             timestamp
==========================  ==============================================================

A fact the caller did not supply is *absent*, never an empty string or
"UNSPECIFIED": otherwise ``payee.district_code == payer.district_code`` would be
TRUE for two empty codes and silently allow the payment. A condition that reads
an absent fact fails, and the evaluator turns that failure into a deny.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openloop.common.v1 import party_pb2
from openloop.rules.v1 import resources_pb2
from openloop_runtime.errors import invalid_field

Facts = dict[str, Any]


@dataclass(frozen=True)
class PaymentFactSet:
    values: Facts
    missing: tuple[str, ...]
    """Facts every decision needs that the caller left out, as paths like ``payer.kind``."""


def _enum_name(enum: Any, value: int, prefix: str) -> str | None:
    if value == 0 or value not in enum.values():
        return None
    name: str = enum.Name(value)
    return name.removeprefix(prefix)


def _party(facts: party_pb2.PartyFacts, side: str, missing: list[str]) -> Facts:
    party: Facts = {}
    kind = _enum_name(party_pb2.PartyKind, facts.kind, "PARTY_KIND_")
    size_class = _enum_name(party_pb2.MerchantSizeClass, facts.size_class, "MERCHANT_SIZE_CLASS_")
    present: dict[str, str | None] = {
        "party": facts.party or None,
        "kind": kind,
        "hosting_participant": facts.hosting_participant or None,
        "district_code": facts.district_code or None,
        "size_class": size_class,
    }
    required = ["party", "kind", "hosting_participant", "district_code"]
    if kind == "MERCHANT":
        required.append("size_class")
    for key, value in present.items():
        if value is not None:
            party[key] = value
        elif key in required:
            missing.append(f"{side}.{key}")
    return party


def payment_facts(facts: resources_pb2.PaymentFacts) -> PaymentFactSet:
    missing: list[str] = []
    values: Facts = {
        "payer": _party(facts.payer, "payer", missing),
        "payee": _party(facts.payee, "payee", missing),
    }
    if facts.HasField("amount"):
        values["amount_satang"] = facts.amount.amount_satang
        if facts.amount.currency_code:
            values["currency_code"] = facts.amount.currency_code
    channel = _enum_name(resources_pb2.Channel, facts.channel, "CHANNEL_")
    if channel is not None:
        values["channel"] = channel
    if facts.HasField("payment_time"):
        try:
            values["payment_time"] = facts.payment_time.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError) as error:
            raise invalid_field(
                "facts.payment_time", "facts.payment_time is not a valid timestamp"
            ) from error
    return PaymentFactSet(values=values, missing=tuple(missing))


def _complete_party(kind: str) -> Facts:
    return {
        "party": "citizens/probe" if kind == "CITIZEN" else "merchants/probe",
        "kind": kind,
        "hosting_participant": "participants/probe",
        "district_code": "1001",
        "size_class": "SMALL_SHOP",
    }


PROBE_FACTS: Facts = {
    "payer": _complete_party("CITIZEN"),
    "payee": _complete_party("MERCHANT"),
    "amount_satang": 10_000,
    "currency_code": "THB",
    "channel": "IN_PERSON",
    "payment_time": datetime(2024, 12, 1, 9, 0, tzinfo=UTC),
}
"""One payment with every fact present. Each rule runs on it once at load: a condition
that fails there (a misspelt fact, an unknown function) or does not give a bool is a
broken rule set, refused before it can decide anything."""
