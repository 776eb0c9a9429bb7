"""Page tokens of the cycle, cycle-position and obligation lists (AIP-158).

A token names the list it belongs to (``kind``), the request's filters (``scope``) and the
keyset position after which the next page starts. It is opaque only so that clients do not
build it; it carries nothing secret. A token from another list, from the same list with other
filters, or not issued by us at all is INVALID_ARGUMENT naming ``page_token``, never a defect:
every part is checked for type and range before any of it reaches a query.

Lifetime positions keep their older token (``paging.py``) so tokens issued before cycles
existed still work.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import TypeVar

from openloop_runtime.errors import DomainError, invalid_field
from openloop_runtime.names import is_valid_id
from openloop_settlement.model import CycleState, ObligationKey
from openloop_settlement.parse import TRANSFER_ID

MAX_TOKEN_LENGTH = 512
MAX_CYCLE_ID = 2**63 - 1

T = TypeVar("T")


def encode(kind: str, scope: str, after: list[int | str]) -> str:
    payload = json.dumps({"k": kind, "s": scope, "a": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode("ascii")


def decode(token: str, kind: str, scope: str, parse_after: Callable[[list[object]], T | None]) -> T:
    """The keyset position in ``token``; ``parse_after`` returns ``None`` for one it refuses."""
    if len(token) <= MAX_TOKEN_LENGTH:
        try:
            payload = json.loads(base64.b64decode(token, altchars=b"-_", validate=True))
        except (binascii.Error, ValueError, RecursionError):
            payload = None
        if (
            isinstance(payload, dict)
            and payload.get("k") == kind
            and payload.get("s") == scope
            and isinstance(payload.get("a"), list)
        ):
            after = parse_after(payload["a"])
            if after is not None:
                return after
    raise foreign_token()


def foreign_token() -> DomainError:
    return invalid_field(
        "page_token", "page_token is not one this service returned for this request"
    )


def cycle_id_in(value: object) -> int | None:
    """A cycle number from a token: an int (never a bool) in the range cycles take."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_CYCLE_ID:
        return value
    return None


# Each list's token: its kind, what its scope is made of, and how its position is checked.

CYCLES = "cycles"
CYCLE_POSITIONS = "cyclePositions"
OBLIGATIONS = "obligations"


def _one_cycle(after: list[object]) -> int | None:
    return cycle_id_in(after[0]) if len(after) == 1 else None


def _one_participant(after: list[object]) -> str | None:
    if len(after) == 1 and isinstance(after[0], str) and is_valid_id(after[0]):
        return after[0]
    return None


def _obligation_key(after: list[object]) -> ObligationKey | None:
    if len(after) != 2:
        return None
    cycle_id, transfer_id = cycle_id_in(after[0]), after[1]
    if (
        cycle_id is None
        or not isinstance(transfer_id, str)
        or not TRANSFER_ID.fullmatch(transfer_id)
    ):
        return None
    return ObligationKey(cycle_id, transfer_id)


def cycles_token(state: CycleState | None, last: int) -> str:
    return encode(CYCLES, state or "", [last])


def cycles_after(token: str, state: CycleState | None) -> int | None:
    """The last cycle number on the previous page (cycles go newest first)."""
    return decode(token, CYCLES, state or "", _one_cycle) if token else None


def cycle_positions_token(cycle_id: int, last: str) -> str:
    return encode(CYCLE_POSITIONS, str(cycle_id), [last])


def cycle_positions_after(token: str, cycle_id: int) -> str | None:
    return decode(token, CYCLE_POSITIONS, str(cycle_id), _one_participant) if token else None


def _obligations_scope(cycle_id: int | None, participant_id: str | None) -> str:
    return f"{cycle_id or '-'}/{participant_id or ''}"


def obligations_token(cycle_id: int | None, participant_id: str | None, last: ObligationKey) -> str:
    scope = _obligations_scope(cycle_id, participant_id)
    return encode(OBLIGATIONS, scope, [last.cycle_id, last.transfer_id])


def obligations_after(
    token: str, cycle_id: int | None, participant_id: str | None
) -> ObligationKey | None:
    if not token:
        return None
    return decode(token, OBLIGATIONS, _obligations_scope(cycle_id, participant_id), _obligation_key)
