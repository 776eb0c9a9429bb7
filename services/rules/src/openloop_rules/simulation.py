"""What a draft rule set would change: it and the active rule set decide the same cases.

The cases are the caller's (each with its own moment, default now) or the most recently
recorded decisions of the draft's program (each decided again at its recorded moment, from
the facts recorded then). Each side checks only the recorded facts its rules read, as
Evaluate does: a recorded request with a malformed fact that one side reads cannot be
decided again, and is left out and counted (``skipped_count``). The "active" side is the
rule set in effect now, one snapshot for the whole simulation. Nothing is stored; the
draft need not be published.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from openloop.rules.v1 import resources_pb2, service_pb2
from openloop_rules import decision, facts
from openloop_rules.convert import OUTCOMES, decision_to_proto, program_name
from openloop_rules.decision import Decision, Outcome
from openloop_rules.evaluator import CompiledRuleSet
from openloop_rules.governance import prepare
from openloop_rules.recorder import RecordedDecision, recent
from openloop_rules.schedule import RuleSchedule
from openloop_rules.scopes import scope_name
from openloop_runtime.errors import DomainError, ErrorReason, invalid_field
from openloop_runtime.timestamps import to_timestamp


def _too_many(field: str, maximum: int) -> DomainError:
    return DomainError(
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.ERROR_REASON_BATCH_TOO_LARGE,
        f"{field} may hold at most {maximum} cases",
        {"field": field, "max": str(maximum)},
    )


def case_facts(
    case: resources_pb2.SimulationCase, scope: str, at: datetime, rule_set: CompiledRuleSet | None,
    field: str,
) -> dict[str, Any]:  # fmt: skip
    if scope == "enrolment":
        return facts.enrolment_facts(case.enrolment_facts, at, f"{field}.enrolment_facts")
    months = rule_set.spending_deadline_months if rule_set is not None else None
    return facts.payment_facts(case.payment_facts, at, months, f"{field}.payment_facts")


def _recorded_decision(row: RecordedDecision, rule_set: CompiledRuleSet | None) -> Decision:
    """``rule_set``'s decision on a recorded request, from the recorded facts its rules read
    (only those are checked, as Evaluate checks them); :class:`DomainError` when one of
    them is malformed."""
    if rule_set is None:
        return decision.no_active_rule_set()
    values = facts.payment_facts(
        row.payment_facts,
        row.decided_at,
        rule_set.spending_deadline_months,
        wanted=rule_set.variables(row.scope),
    )
    return rule_set.evaluate(row.scope, values)


def decide(rule_set: CompiledRuleSet | None, scope: str, values: Mapping[str, Any]) -> Decision:
    if rule_set is None:
        return decision.no_active_rule_set()
    return rule_set.evaluate(scope, values)


def _changed(active: Decision, draft: Decision) -> bool:
    def reasons(d: Decision) -> list[tuple[str, str]]:
        return [(v.rule_id, v.reason_code) for v in d.violations]

    return active.outcome is not draft.outcome or reasons(active) != reasons(draft)


class Simulation:
    def __init__(
        self,
        engine: AsyncEngine,
        schedule: RuleSchedule,
        *,
        clock: Callable[[], datetime],
        max_cases: int,
    ) -> None:
        self._engine = engine
        self._schedule = schedule
        self._clock = clock
        self._max_cases = max_cases

    async def run(
        self, request: service_pb2.SimulateRuleSetRequest
    ) -> service_pb2.SimulateRuleSetResponse:
        if len(request.cases) > self._max_cases:
            raise _too_many("cases", self._max_cases)
        if not 0 <= request.recent_decisions <= self._max_cases:
            raise _too_many("recent_decisions", self._max_cases)
        if not request.cases and not request.recent_decisions:
            raise invalid_field("cases", "give cases, or a number of recent_decisions")
        draft = (await prepare(self._engine, request.document, request.program_document)).compiled
        now = self._clock()
        active = self._schedule.in_effect(draft.program_id, now)
        program = program_name(draft.program_id)
        results: list[resources_pb2.SimulationResult] = []
        skipped = 0
        if request.cases:
            for index, case in enumerate(request.cases):
                results.append(
                    self._case(
                        index=index,
                        case=case,
                        active=active,
                        draft=draft,
                        now=now,
                        program=program,
                    )
                )
        else:
            for row in await recent(self._engine, draft.program_id, request.recent_decisions):
                try:
                    active_decision = _recorded_decision(row, active)
                    draft_decision = _recorded_decision(row, draft)
                except DomainError:  # a fact one side reads was malformed when recorded
                    skipped += 1
                    continue
                results.append(
                    resources_pb2.SimulationResult(
                        case_id=f"recorded:{row.decided_at.isoformat()}",
                        active=decision_to_proto(active_decision, program),
                        draft=decision_to_proto(draft_decision, program),
                        changed=_changed(active_decision, draft_decision),
                        recorded_outcome=OUTCOMES[Outcome(row.outcome)],
                        decide_time=to_timestamp(row.decided_at),
                    )
                )
        return _summary(results, active, skipped)

    def _case(
        self,
        *,
        index: int,
        case: resources_pb2.SimulationCase,
        active: CompiledRuleSet | None,
        draft: CompiledRuleSet,
        now: datetime,
        program: str,
    ) -> resources_pb2.SimulationResult:
        field = f"cases[{index}]"
        scope = scope_name(case.scope)
        if scope is None:
            raise invalid_field(f"{field}.scope", f"{field}.scope must be a known scope")
        at = now
        if case.HasField("decide_time"):
            at = facts.timestamp_fact(case.decide_time, f"{field}.decide_time")
        active_decision = decide(active, scope, case_facts(case, scope, at, active, field))
        draft_decision = decide(draft, scope, case_facts(case, scope, at, draft, field))
        return resources_pb2.SimulationResult(
            case_id=case.case_id,
            active=decision_to_proto(active_decision, program),
            draft=decision_to_proto(draft_decision, program),
            changed=_changed(active_decision, draft_decision),
            decide_time=to_timestamp(at),
        )


def _summary(
    results: Sequence[resources_pb2.SimulationResult],
    active: CompiledRuleSet | None,
    skipped: int = 0,
) -> service_pb2.SimulateRuleSetResponse:
    allow, deny = resources_pb2.OUTCOME_ALLOW, resources_pb2.OUTCOME_DENY
    return service_pb2.SimulateRuleSetResponse(
        results=results,
        active_rule_set_version=active.version if active is not None else "",
        changed_count=sum(r.changed for r in results),
        newly_denied_count=sum(
            r.active.outcome == allow and r.draft.outcome == deny for r in results
        ),
        newly_allowed_count=sum(
            r.active.outcome == deny and r.draft.outcome == allow for r in results
        ),
        skipped_count=skipped,
    )
