"""Checking the ``pending_timeouts`` table against the journal's replay.

The expirer voids a pending transfer only once its ``pending_timeouts`` row is due
(:mod:`openloop_ledger.expirer`): a deleted row leaves the transfer's reserved money
held forever, a later ``expires_at`` holds it longer than its timeout allows, and a
row for any other transfer is one the ledger never wrote. None of these touch a leaf
or a balance, so they must be checked on their own.

The ledger adds a row for each pending transfer accepted with a timeout, expiring at
its batch's time (the transfer's ``create_time``) plus ``timeout`` seconds
(:meth:`openloop_ledger.planning.TransferBatch._expires_at`), and removes it when a
post, void or expiry resolves the transfer (:mod:`openloop_ledger.writes`). So the
rows that must exist once the whole journal is replayed are exactly the replay's
unresolved pending transfers with a timeout
(:meth:`openloop_ledger.audit.replay.Replay.unresolved_with_timeout`), and expecting
them costs memory in the number of those transfers, never in the journal's size.

Each finding is reported at the pending transfer's position (the transfer an extra
row names, where the journal holds it), so that it sorts with the rows it concerns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from openloop_ledger.audit.replay import Unresolved

Row = Mapping[str, Any]
Report = Callable[[int, str, str], None]
"""Records a finding: ``(position, kind, message)``."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SECOND = 1_000_000
"""Microseconds: PostgreSQL's ``timestamptz`` holds whole microseconds, as ``datetime`` does,
so ``create_time + timeout`` is exact in them."""
_UNEXPECTED = (-1, 0, None)
"""What a row no unresolved pending transfer with a timeout explains is matched with."""
_NO_TRANSFER = 2**63
"""Where a row naming no transfer is reported: after every row, as the verifier's other
findings that are about no journal row."""


def _stored_micros(value: object) -> int | None:
    """A stored time in microseconds since the Unix epoch, as the verifier's database
    connection decodes a ``timestamptz`` (:func:`openloop_ledger.leaf.epoch_micros_codec`)
    and an export keeps it; a ``datetime`` (an ISO 8601 export value) is converted.
    ``None`` for a value no ``timestamptz`` holds (an edited export): a finding, not a
    crash."""
    if type(value) is int:
        return value
    if isinstance(value, datetime):
        try:
            return (value - _EPOCH) // _MICROSECOND
        except TypeError:  # a datetime without a time zone
            return None
    return None


def _when(value: int | None) -> str:
    if value is None:
        return "no time"
    try:
        return (_EPOCH + value * _MICROSECOND).isoformat()
    except OverflowError:
        return f"{value} µs after 1970"


class TimeoutCheck:
    """Compares stored ``pending_timeouts`` rows with the unresolved pending transfers.

    :meth:`expect` starts the check once the journal is replayed, :meth:`compare` takes
    the stored rows (any order, any chunking), and :meth:`finish` names the rows still
    missing. Never started (an export made before the table was exported), it reports
    nothing."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._expected: dict[str, tuple[int, int, int | None] | None] | None = None
        """Transfer id -> (position, timeout, expires_at in microseconds), in journal order,
        or ``None`` once its row was seen; ``None`` until :meth:`expect`."""

    def expect(self, unresolved: Iterable[Unresolved]) -> None:
        """The unresolved pending transfers with a timeout at the end of the journal."""
        expected = self._expected = {}
        for pending in unresolved:
            created = _stored_micros(pending.create_time)
            expected[pending.transfer_id] = (
                pending.position,
                pending.timeout,
                # None: a create_time no row can hold, reported as a changed transfer row.
                None if created is None else created + pending.timeout * _SECOND,
            )

    def compare(self, stored: Iterable[Row]) -> None:
        """Stored rows: ``transfer_id``, ``expires_at`` and ``position``, the journal
        position of the transfer the row names (``None``: no such transfer)."""
        expected = self._expected
        if expected is None:
            raise RuntimeError("TimeoutCheck.compare before expect")
        for row in stored:
            transfer_id = row["transfer_id"]
            wanted = expected.get(transfer_id, _UNEXPECTED)
            if wanted is None or wanted is _UNEXPECTED:
                self._extra(transfer_id, row.get("position"), second=wanted is None)
                continue
            expected[transfer_id] = None
            position, timeout, expires_at = wanted
            stored_at = _stored_micros(row["expires_at"])
            if expires_at is not None and stored_at != expires_at:
                late = stored_at is not None and stored_at > expires_at
                self._report(
                    position,
                    "timeout",
                    f"pending transfer {transfer_id!r} at position {position} expires at "
                    f"{_when(stored_at)} in pending_timeouts, but the journal gives "
                    f"{_when(expires_at)} (its create_time plus its timeout of {timeout} s): "
                    "the row was changed, and the expirer "
                    + ("releases the hold later than it must" if late else "tries it too early"),
                )

    def _extra(self, transfer_id: str, position: int | None, *, second: bool) -> None:
        if position is None:
            self._report(
                _NO_TRANSFER,
                "timeout",
                f"pending_timeouts holds a row for {transfer_id!r}, which is no transfer "
                "in the journal: the row was inserted",
            )
            return
        self._report(
            position,
            "timeout",
            f"pending_timeouts holds a {'second ' if second else ''}row for transfer "
            f"{transfer_id!r} at position {position}"
            + ("" if second else ", which is not an unresolved pending transfer with a timeout")
            + ": the row was inserted",
        )

    def finish(self) -> None:
        """Every expected row not stored (in journal order) is missing."""
        expected, self._expected = self._expected, None
        for transfer_id, wanted in (expected or {}).items():
            if wanted is None:
                continue
            position, timeout, expires_at = wanted
            self._report(
                position,
                "timeout",
                f"pending transfer {transfer_id!r} at position {position} is unresolved and "
                f"has a timeout of {timeout} s, but pending_timeouts has no row for it "
                f"(due {_when(expires_at)}): the row was deleted, and the expirer never "
                "releases its hold",
            )
