"""Telling a changed row from a moved one, in time and memory linear in the rows that differ.

A row whose leaf no longer matches the sealed leaf hash at its position was either
changed, or sealed at another position and moved (rows reordered). The leaf holds
the position, so the only way to know where a row was sealed is to hash its leaf at
a candidate position and compare with the sealed hash there. Trying every differing
position for every differing row is quadratic: one ``UPDATE`` of a few thousand rows
took the verifier minutes, and of a million, days.

Rows are moved to nearby positions in practice (a swap, a rotation, a block moved
past its neighbours), and the differing positions are what a move leaves behind: so
each differing row is tried at the sealed positions of the :data:`WINDOW` differing
rows before and after it, in position order, however far apart they are. A swap of
two rows anywhere in the journal is found when few rows between them differ; a row
moved past more than :data:`WINDOW` other differing rows is reported as changed,
at its position, which still names the first row that was tampered with. At most
:data:`WINDOW` rows are held at a time, and each costs one leaf encoding and at most
``2 * WINDOW`` hashes.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from openloop_ledger.leaf import leaf_at

WINDOW = 16
"""Differing rows on each side a differing row is tried against."""

Report = Callable[[int, str, str], None]
"""Records a finding: ``(position, kind, message)``."""


@dataclass(slots=True)
class _Differing:
    position: int
    transfer_id: str
    leaf: bytes | None
    """The row's leaf at its own position; ``None`` if it cannot be encoded (its finding
    is already recorded, see :func:`openloop_ledger.audit.verifier.digest_rows`)."""
    sealed: bytes
    """The sealed leaf hash at ``position``."""
    sealed_at: int | None = None
    """Where this row's leaf was sealed, once found."""


class MismatchClassifier:
    """Receives the differing rows in position order and reports each as changed or
    reordered once the :data:`WINDOW` differing rows after it have been seen."""

    def __init__(self, report: Report, *, window: int = WINDOW) -> None:
        self._report = report
        self._window = window
        self._held: deque[_Differing] = deque()
        self.trials = 0
        """Leaf hashes computed to look for moved rows: linear in the differing rows."""
        self.most_held = 0
        """The most differing rows held at once: at most the window."""

    def add(self, position: int, transfer_id: str, leaf: bytes | None, sealed: bytes) -> None:
        """A row at ``position`` whose leaf (``None``: unencodable) is not ``sealed``."""
        row = _Differing(position, transfer_id, leaf, sealed)
        for other in self._held:
            if row.sealed_at is None and self._fits(row, other):
                row.sealed_at = other.position
            if other.sealed_at is None and self._fits(other, row):
                other.sealed_at = position
        self._held.append(row)
        if len(self._held) > self._window:
            self._emit(self._held.popleft())
        self.most_held = max(self.most_held, len(self._held))

    def finish(self) -> None:
        while self._held:
            self._emit(self._held.popleft())

    def _fits(self, row: _Differing, there: _Differing) -> bool:
        """Whether ``row`` was sealed at ``there``'s position."""
        if row.leaf is None:
            return False
        self.trials += 1
        moved = hashlib.sha256(b"\x00" + leaf_at(row.leaf, there.position)).digest()
        return moved == there.sealed

    def _emit(self, row: _Differing) -> None:
        if row.sealed_at is not None:
            self._report(
                row.position,
                "reordered",
                f"row {row.transfer_id!r} at position {row.position} was sealed at position "
                f"{row.sealed_at}: rows were reordered",
            )
        elif row.leaf is not None:
            self._report(
                row.position,
                "changed",
                f"transfer {row.transfer_id!r} at position {row.position} no longer hashes to "
                "its sealed leaf: the row was changed",
            )
