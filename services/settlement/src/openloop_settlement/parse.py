"""Turns requests into settlement's values; a malformed request is INVALID_ARGUMENT."""

from __future__ import annotations

import re

from openloop.settlement.v1 import service_pb2
from openloop_runtime.errors import invalid_field
from openloop_runtime.money import positive_satang
from openloop_runtime.names import parse_name
from openloop_settlement.model import TransferRecord

TRANSFER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""The ledger's transfer id alphabet: settlement keys obligations by the ledger's ids."""


def transfer_record(request: service_pb2.RecordTransferRequest) -> TransferRecord:
    if not TRANSFER_ID.fullmatch(request.transfer_id):
        raise invalid_field("transfer_id", "transfer_id must be 1-64 characters of [A-Za-z0-9._:-]")
    debit = parse_name(request.debit_participant, "participants", field="debit_participant")
    credit = parse_name(request.credit_participant, "participants", field="credit_participant")
    if not request.HasField("amount"):
        raise invalid_field("amount", "amount is required")
    return TransferRecord(
        transfer_id=request.transfer_id,
        debit_participant_id=debit,
        credit_participant_id=credit,
        amount=positive_satang(request.amount, field="amount"),
    )


def position_participant(name: str) -> str:
    """The participant id in ``participants/{participant}/position``."""
    return parse_name(name, "participants", field="name", suffix="/position")
