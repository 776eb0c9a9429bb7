"""Publishing, activating and rolling back rule sets: the operators' changes.

Each change is checked completely before anything is written, then written in one
transaction together with its audit row (who, what, when, why). A publish compiles and
type-checks every rule (see :mod:`openloop_rules.compiler`); an activation may only take
effect after the propagation margin, so every replica has the version before it decides.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import grpc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openloop_rules import errors
from openloop_rules.compiler import compile_rule_set
from openloop_rules.operators import Operator
from openloop_rules.program import ProgramDocument, ProgramError, parse_program, sha256_of
from openloop_rules.ruleset import RuleSetDocument, RuleSetError, parse_rule_set
from openloop_rules.schedule import ScheduleLoader
from openloop_rules.shipped import shipped_programs
from openloop_rules.store import activations, audit, catalog
from openloop_rules.store.activations import Activation, ActivationKind
from openloop_rules.store.catalog import StoredRuleSet
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field
from openloop_runtime.text import bounded_text

MAX_DOCUMENT_LENGTH = 256 * 1024
MAX_REASON_LENGTH = 1000
_REQUEST_ID_LENGTH = 128


def reason_text(reason: str) -> str:
    return bounded_text(reason, field="reason", max_length=MAX_REASON_LENGTH, required=True)


def _request_id(request_id: str) -> str | None:
    return bounded_text(request_id, field="request_id", max_length=_REQUEST_ID_LENGTH) or None


class DraftRuleSet:
    """A rule-set document with the program it names, parsed and compiled, not stored."""

    def __init__(self, document: RuleSetDocument, text: str, program: ProgramDocument | None,
                 program_text: str | None) -> None:  # fmt: skip
        self.document = document
        self.text = text
        self.program = program
        self.program_text = program_text
        """The program's YAML when it comes with the request or is shipped, to store it."""
        self.compiled = compile_rule_set(document, program, sha256_of(text))


async def prepare(engine: AsyncEngine, text: str, program_text: str) -> DraftRuleSet:
    """Parse, resolve the program and compile; the refusals a publish or simulation gives."""
    bounded_text(text, field="document", max_length=MAX_DOCUMENT_LENGTH, required=True)
    bounded_text(program_text, field="program_document", max_length=MAX_DOCUMENT_LENGTH)
    try:
        document = parse_rule_set(text)
    except RuleSetError as error:
        raise errors.rule_set_invalid(error) from error
    draft_program: ProgramDocument | None = None
    if program_text:
        try:
            draft_program = parse_program(program_text)
        except ProgramError as error:
            raise errors.program_invalid(error) from error
    program, source = await _program(engine, document, draft_program, program_text)
    try:
        return DraftRuleSet(document, text, program, source)
    except RuleSetError as error:
        raise errors.rule_set_invalid(error) from error


async def _program(
    engine: AsyncEngine,
    document: RuleSetDocument,
    draft: ProgramDocument | None,
    draft_text: str,
) -> tuple[ProgramDocument | None, str | None]:
    if document.program_version is None:
        return None, None
    key = (document.program, document.program_version)
    if draft is not None and draft.key == key:
        return draft, draft_text
    async with engine.connect() as conn:
        stored = await catalog.load_programs(conn)
    if key in stored:
        return stored[key], None
    shipped = shipped_programs().get(key)
    if shipped is not None:
        return shipped.program, shipped.document
    raise errors.program_not_found(*key)


class _RacedError(Exception):
    """A concurrent request with the same request_id activated first."""


class Governance:
    def __init__(
        self,
        engine: AsyncEngine,
        loader: ScheduleLoader,
        *,
        margin: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._loader = loader
        self._margin = margin
        self._clock = clock

    async def publish(
        self, operator: Operator, text: str, program_text: str, reason: str
    ) -> StoredRuleSet:
        reason = reason_text(reason)
        draft = await prepare(self._engine, text, program_text)
        document = draft.document
        async with self._engine.begin() as conn:
            if (
                draft.program is not None
                and draft.program_text is not None
                and await catalog.store_program(conn, draft.program, draft.program_text)
            ):
                await audit.record(
                    conn,
                    actor=operator.actor,
                    action="PUBLISH_PROGRAM",
                    program_id=draft.program.id,
                    rule_set_version=None,
                    reason=reason,
                    details={"program_version": draft.program.version},
                )
            stored, created = await catalog.store_rule_set(
                conn,
                version=document.version,
                document=text,
                program_id=document.program,
                program_version=document.program_version,
                published_by=operator.actor,
                reason=reason,
            )
            if created:
                await audit.record(
                    conn,
                    actor=operator.actor,
                    action="PUBLISH",
                    program_id=document.program,
                    rule_set_version=document.version,
                    reason=reason,
                    details={"sha256": stored.sha256},
                )
        self._loader.learn(document.program)
        return stored

    def _effective(self, requested: datetime | None) -> datetime:
        earliest = self._clock() + self._margin
        if requested is None:
            return earliest
        if requested < earliest:
            raise DomainError(
                grpc.StatusCode.INVALID_ARGUMENT,
                ErrorReason.ERROR_REASON_ACTIVATION_TOO_SOON,
                "effective_time must leave every replica time to load the rule set: "
                f"at least {self._margin.total_seconds():g} s from now",
                {"field": "effective_time", "earliest_effective_time": earliest.isoformat()},
            )
        return requested

    async def activate(
        self,
        operator: Operator,
        *,
        version: str,
        effective_at: datetime | None,
        reason: str,
        request_id: str,
    ) -> Activation:
        reason = reason_text(reason)
        key = _request_id(request_id)
        replay = await self._replay(key, version)
        if replay is not None:
            return replay
        effective = self._effective(effective_at)
        try:
            async with self._engine.begin() as conn:
                stored = await catalog.get_rule_set(conn, version)
                if stored is None:
                    raise errors.rule_set_not_found(version)
                activation = await self._insert(
                    conn,
                    operator,
                    program_id=stored.program_id,
                    version=version,
                    effective=effective,
                    reason=reason,
                    request_id=key,
                    kind=ActivationKind.ACTIVATE,
                )
        except _RacedError:
            return await self._raced(key, version)
        await self._loader.refresh()
        return activation

    async def rollback(
        self,
        operator: Operator,
        *,
        program_id: str,
        version: str | None,
        effective_at: datetime | None,
        reason: str,
        request_id: str,
    ) -> Activation:
        reason = reason_text(reason)
        key = _request_id(request_id)
        replay = await self._replay(key, version)
        if replay is not None:
            return replay
        effective = self._effective(effective_at)
        now = self._clock()
        try:
            async with self._engine.begin() as conn:
                history = await activations.of_program(conn, program_id)
                if not history and program_id not in await catalog.known_programs(conn):
                    raise errors.program_not_found(program_id)
                target = _rollback_target(history, now, version)
                activation = await self._insert(
                    conn,
                    operator,
                    program_id=program_id,
                    version=target,
                    effective=effective,
                    reason=reason,
                    request_id=key,
                    kind=ActivationKind.ROLLBACK,
                )
        except _RacedError:
            return await self._raced(key, version)
        await self._loader.refresh()
        return activation

    async def _raced(self, request_id: str | None, version: str | None) -> Activation:
        """The activation a concurrent request under the same ``request_id`` made."""
        replay = await self._replay(request_id, version)
        assert replay is not None  # its row is why ours conflicted
        return replay

    async def _replay(self, request_id: str | None, version: str | None) -> Activation | None:
        if request_id is None:
            return None
        async with self._engine.connect() as conn:
            existing = await activations.by_request_id(conn, request_id)
        if existing is None:
            return None
        if version is not None and existing.version != version:
            raise errors.activation_conflict(
                "request_id was used for another activation", field="request_id"
            )
        return existing

    async def _insert(
        self,
        conn: AsyncConnection,
        operator: Operator,
        *,
        program_id: str,
        version: str,
        effective: datetime,
        reason: str,
        request_id: str | None,
        kind: ActivationKind,
    ) -> Activation:
        activation = await activations.insert(
            conn,
            program_id=program_id,
            version=version,
            effective_at=effective,
            actor=operator.actor,
            reason=reason,
            kind=kind,
            request_id=request_id,
        )
        if activation is None:
            raise _RacedError  # rolls this transaction back; the winner's activation stands
        await audit.record(
            conn,
            actor=operator.actor,
            action=kind.value,
            program_id=program_id,
            rule_set_version=version,
            reason=reason,
            details={
                "activation_id": activation.activation_id,
                "effective_at": effective.isoformat(),
                **({"request_id": request_id} if request_id else {}),
            },
        )
        return activation


def _rollback_target(history: list[Activation], now: datetime, version: str | None) -> str:
    """The version to re-activate: ``version`` if it was ever in effect for the program,
    else the version in effect before the current one.

    "In effect" as a decision sees it: of activations taking effect at the same moment only
    the later one ever decided, and one taking effect after ``now`` has not decided yet.
    """
    past = sorted(
        (a for a in history if a.effective_at <= now),
        key=lambda a: (a.effective_at, a.activation_id),
    )
    decided = [
        activation
        for activation, following in zip(past, [*past[1:], None], strict=True)
        if following is None or following.effective_at != activation.effective_at
    ]
    if version is not None:
        if any(a.version == version for a in decided):
            return version
        raise errors.activation_conflict(
            f"ruleSets/{version} was never in effect for this program", field="rule_set"
        )
    if not decided:
        raise errors.activation_conflict("nothing is active, so nothing can be rolled back")
    current = decided[-1].version
    for activation in reversed(decided):
        if activation.version != current:
            return activation.version
    raise errors.activation_conflict(
        "no earlier version was active for this program", field="rule_set"
    )


def page_size(requested: int, *, default: int = 20, maximum: int = 100) -> int:
    if requested < 0:
        raise invalid_field("page_size", "page_size must not be negative")
    return min(requested or default, maximum)
