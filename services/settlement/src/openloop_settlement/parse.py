"""Turns requests into settlement's values; a malformed request is INVALID_ARGUMENT."""

from __future__ import annotations

import re

from openloop.settlement.v1 import resources_pb2, service_pb2
from openloop_runtime.errors import invalid_field
from openloop_runtime.money import positive_satang
from openloop_runtime.names import is_valid_id, parse_name
from openloop_settlement.model import CycleState, TransferRecord

TRANSFER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""The ledger's transfer id alphabet: settlement keys obligations by the ledger's ids."""
REQUEST_ID = TRANSFER_ID
"""Idempotency keys of the operators' changes take the same alphabet."""
CYCLES = "settlementCycles"
ANY_CYCLE = "-"
"""AIP-159's wildcard: "settlementCycles/-" reads across every cycle."""
_CYCLE_NUMBER = re.compile(r"[1-9][0-9]{0,18}")
_MAX_CYCLE_ID = 2**63 - 1

_STATES = {
    resources_pb2.SettlementCycle.STATE_OPEN: CycleState.OPEN,
    resources_pb2.SettlementCycle.STATE_CLOSED: CycleState.CLOSED,
    resources_pb2.SettlementCycle.STATE_SETTLED: CycleState.SETTLED,
}


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


def cycle_number(segment: str) -> int | None:
    """A cycle's number from its name segment: decimal, from 1, no leading zero."""
    if _CYCLE_NUMBER.fullmatch(segment) and int(segment) <= _MAX_CYCLE_ID:
        return int(segment)
    return None


def _segments(name: str, field: str, shape: str, count: int) -> list[str]:
    parts = name.split("/")
    if len(parts) != count or parts[0] != CYCLES:
        raise invalid_field(field, f"{field} must look like '{shape}'")
    return parts


def cycle_name(name: str, field: str = "name") -> int:
    """The cycle number in ``settlementCycles/{cycle}``."""
    shape = "settlementCycles/{cycle}"
    cycle = cycle_number(_segments(name, field, shape, 2)[1])
    if cycle is None:
        raise invalid_field(field, f"{field} must look like '{shape}' with a number from 1")
    return cycle


def cycles_parent(name: str) -> int | None:
    """The cycle number in ``settlementCycles/{cycle}``; ``None`` for ``settlementCycles/-``."""
    if name == f"{CYCLES}/{ANY_CYCLE}":
        return None
    return cycle_name(name, "parent")


def cycle_position_name(name: str) -> tuple[int, str]:
    """Cycle and participant in ``settlementCycles/{cycle}/positions/{participant}``."""
    shape = "settlementCycles/{cycle}/positions/{participant}"
    parts = _segments(name, "name", shape, 4)
    cycle = cycle_number(parts[1])
    if cycle is None or parts[2] != "positions" or not is_valid_id(parts[3]):
        raise invalid_field("name", f"name must look like '{shape}'")
    return cycle, parts[3]


def obligation_name(name: str) -> tuple[int | None, str]:
    """Cycle (``None`` for "-") and transfer id in
    ``settlementCycles/{cycle}/obligations/{transfer_id}``."""
    shape = "settlementCycles/{cycle}/obligations/{transfer_id}"
    parts = _segments(name, "name", shape, 4)
    cycle = None if parts[1] == ANY_CYCLE else cycle_number(parts[1])
    if (
        (cycle is None and parts[1] != ANY_CYCLE)
        or parts[2] != "obligations"
        or not TRANSFER_ID.fullmatch(parts[3])
    ):
        raise invalid_field("name", f"name must look like '{shape}' ({{cycle}} may be '-')")
    return cycle, parts[3]


def request_id(value: str) -> str:
    if not REQUEST_ID.fullmatch(value):
        raise invalid_field("request_id", "request_id must be 1-64 characters of [A-Za-z0-9._:-]")
    return value


def participant_filter(value: str) -> str | None:
    """An optional ``participants/{participant}`` filter; ``None`` when empty."""
    return parse_name(value, "participants", field="participant") if value else None


def state_filter(value: int) -> CycleState | None:
    if value == resources_pb2.SettlementCycle.STATE_UNSPECIFIED:
        return None
    state = _STATES.get(value)  # type: ignore[call-overload]
    if state is None:
        raise invalid_field("state", "state must be OPEN, CLOSED, SETTLED or unspecified")
    return state
