"""Checking the balance history (``account_balances``) against the journal's replay.

An account with ``history`` gets one row per transfer that touches it, holding its
balances right after that transfer (:mod:`openloop_ledger.writes`), and
``GetAccountBalances`` serves those rows as they are: an edited, deleted or
inserted history row would go unnoticed if only the accounts' final balances were
checked. The verifier's replay knows each history account's running balances at
every position (it applies the transfers that touch one in journal order), so it
expects a row per such transfer and compares it with the stored one.

Both sides arrive in position order, so the comparison holds only the expectations
of the journal range read last, never the whole history.

A changed transfer puts every later history row of its accounts off by the same
amount: only the row where an account's discrepancy starts or changes is reported,
so one edit is one finding, and a second edit to the same account is still seen.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from typing import Any

from openloop_ledger.audit.replay import Totals

Row = Mapping[str, Any]
Report = Callable[[int, str, str], None]
"""Records a finding: ``(position, kind, message)``."""
Balances = tuple[int, int, int, int]
_EVEN: Balances = (0, 0, 0, 0)


Unexpected = Callable[[str, int, str], None]
"""Records a history row of an account not checked: ``(account, position, message)``."""


class HistoryCheck:
    def __init__(self, report: Report, checked: Collection[str], unexpected: Unexpected) -> None:
        self._report = report
        self._checked = checked
        """The history accounts whose rows are expected."""
        self._unexpected = unexpected
        self._expected: dict[tuple[int, str], tuple[str, int, int, int, int]] = {}
        """(position, account) -> (transfer id, debits pending, posted, credits pending,
        posted after it), in position order. Flat tuples: a verification makes one per
        history row, and fewer objects mean fewer garbage collections."""
        self._off: dict[str, Balances] = {}
        """Per account, how far its last history row was from the replay (when it was)."""

    def expect(self, position: int, account_id: str, transfer_id: str, totals: Totals) -> None:
        """The replay applied ``transfer_id`` at ``position`` to history account
        ``account_id``, leaving ``totals``."""
        self._expected[position, account_id] = (
            transfer_id,
            totals.debits_pending,
            totals.debits_posted,
            totals.credits_pending,
            totals.credits_posted,
        )

    def compare(self, stored: Iterable[Row], upto: int | None) -> None:
        """Compare ``stored`` history rows with the expectations, then report every
        expected row below position ``upto`` (all of them when ``None``) as missing."""
        expected = self._expected
        off = self._off
        for row in stored:
            position, account_id = row["position"], row["account_id"]
            wanted = expected.pop((position, account_id), None)
            if wanted is None:
                self._extra(position, account_id)
            elif (
                account_id in off
                or wanted[0] != row["transfer_id"]
                or wanted[1] != row["debits_pending"]
                or wanted[2] != row["debits_posted"]
                or wanted[3] != row["credits_pending"]
                or wanted[4] != row["credits_posted"]
            ):
                self._differs(row, wanted)
        missing = []
        for key in expected:  # in position order: stop at the first one still to come
            if upto is not None and key[0] >= upto:
                break
            missing.append(key)
        for position, account_id in missing:
            transfer_id = expected.pop((position, account_id))[0]
            self._report(
                position,
                "balance",
                f"history row of account {account_id!r} at position {position} (transfer "
                f"{transfer_id!r}) is missing: the row was deleted",
            )

    def _extra(self, position: int, account_id: str) -> None:
        message = (
            f"history row of account {account_id!r} at position {position} has no "
            "transfer of that history account there: the row was inserted"
        )
        if account_id in self._checked:
            self._report(position, "balance", message)
        else:
            self._unexpected(account_id, position, message)

    def _differs(self, row: Row, wanted: tuple[str, int, int, int, int]) -> None:
        """A row that differs, or of an account whose last row differed."""
        position, account_id = row["position"], row["account_id"]
        held = (
            row["debits_pending"],
            row["debits_posted"],
            row["credits_pending"],
            row["credits_posted"],
        )
        transfer_id, balances = wanted[0], wanted[1:]
        off = (
            held[0] - balances[0],
            held[1] - balances[1],
            held[2] - balances[2],
            held[3] - balances[3],
        )
        was_off = self._off.pop(account_id, _EVEN)
        if off != _EVEN:
            self._off[account_id] = off
        if row["transfer_id"] != transfer_id or off not in {_EVEN, was_off}:
            self._report(
                position,
                "balance",
                f"history row of account {account_id!r} at position {position} holds "
                f"transfer {row['transfer_id']!r} and (debits pending, posted, credits "
                f"pending, posted) {held}, but the journal gives {transfer_id!r} and "
                f"{balances}: the row was changed (later rows of the account off by as "
                "much are not listed)",
            )


class StoredHistory:
    """Stored history rows, read in position order only as far as the replay has come."""

    def __init__(self, chunks: AsyncIterator[list[Row]]) -> None:
        self._chunks = chunks
        self._buffer: deque[Row] = deque()
        self._done = False

    async def until(self, end: int | None) -> list[Row]:
        """The rows not yet returned at positions below ``end`` (all of them when ``None``)."""
        rows: list[Row] = []
        buffer = self._buffer
        while True:
            while buffer and (end is None or buffer[0]["position"] < end):
                rows.append(buffer.popleft())
            if buffer or self._done:
                return rows
            try:
                buffer.extend(await anext(self._chunks))
            except StopAsyncIteration:
                self._done = True
