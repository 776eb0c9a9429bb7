"""The activation history: from ``effective_at`` on, ``version`` decides for its program.

Rows are only ever added. The rule set in effect at a moment is the one of the activation
with the latest ``effective_at`` not after that moment (the later row wins a tie), so a
rollback is one more row, and the history says who changed what, when and why.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from openloop_rules.tables import activations
from openloop_runtime.commit_order import CommitOrder

_NUMBERING = CommitOrder("activations")
"""Activations are numbered in commit order, so a ListActivations page below an id never
gains one."""


class ActivationKind(enum.StrEnum):
    ACTIVATE = "ACTIVATE"
    ROLLBACK = "ROLLBACK"
    BOOTSTRAP = "BOOTSTRAP"


@dataclass(frozen=True)
class Activation:
    activation_id: int
    program_id: str
    version: str
    effective_at: datetime
    activated_at: datetime
    actor: str
    reason: str
    kind: ActivationKind
    request_id: str | None


_COLUMNS = (
    activations.c.activation_id,
    activations.c.program_id,
    activations.c.version,
    activations.c.effective_at,
    activations.c.activated_at,
    activations.c.activated_by,
    activations.c.reason,
    activations.c.kind,
    activations.c.request_id,
)


def _activation(row: object) -> Activation:
    values = list(row)  # type: ignore[call-overload]
    values[7] = ActivationKind(values[7])
    return Activation(*values)


async def insert(
    conn: AsyncConnection,
    *,
    program_id: str,
    version: str,
    effective_at: datetime,
    actor: str,
    reason: str,
    kind: ActivationKind,
    request_id: str | None,
) -> Activation | None:
    """The new activation; None when a concurrent request with ``request_id`` made one.

    From here to the commit every other activation waits for this one (its id must be
    visible before a later one is taken; see :mod:`openloop_runtime.commit_order`), so the
    transaction writes nothing after it but its audit row."""
    await _NUMBERING.take_turn(conn)
    row = (
        await conn.execute(
            pg_insert(activations)
            .values(
                program_id=program_id,
                version=version,
                effective_at=effective_at,
                activated_by=actor,
                reason=reason,
                kind=kind.value,
                request_id=request_id,
            )
            .on_conflict_do_nothing(constraint="uq_activations_request_id")
            .returning(*_COLUMNS)
        )
    ).first()
    return None if row is None else _activation(row)


async def by_request_id(conn: AsyncConnection, request_id: str) -> Activation | None:
    row = (
        await conn.execute(select(*_COLUMNS).where(activations.c.request_id == request_id))
    ).first()
    return _activation(row) if row is not None else None


async def every(conn: AsyncConnection) -> list[Activation]:
    """Every committed activation, oldest id first: what a replica's schedule is made of.

    A replica reads them all rather than those after the highest id it has seen: ids are
    taken at insert and rows appear at commit, so a smaller id can appear after a larger
    one (see :mod:`openloop_rules.schedule`). The table holds one row per operator change.
    """
    query = select(*_COLUMNS).order_by(activations.c.activation_id)
    return [_activation(row) for row in await conn.execute(query)]


async def of_program(
    conn: AsyncConnection, program_id: str, *, before_id: int | None = None, limit: int = 1000
) -> list[Activation]:
    """A program's history, newest first; ``before_id`` is the last id a page listed.
    Activations become visible in the order of their ids (:func:`insert`), so one added
    meanwhile is always numbered above every activation listed."""
    query = (
        select(*_COLUMNS)
        .where(activations.c.program_id == program_id)
        .order_by(activations.c.activation_id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(activations.c.activation_id < before_id)
    return [_activation(row) for row in await conn.execute(query)]


def in_effect(history: list[Activation], at: datetime) -> Activation | None:
    """The activation deciding at ``at``, from any order of ``history``."""
    current = [a for a in history if a.effective_at <= at]
    if not current:
        return None
    return max(current, key=lambda a: (a.effective_at, a.activation_id))
