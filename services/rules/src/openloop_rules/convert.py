"""Decisions to the wire."""

from __future__ import annotations

from openloop.rules.v1 import resources_pb2
from openloop_rules.decision import Decision, Outcome

_OUTCOMES = {
    Outcome.ALLOW: resources_pb2.OUTCOME_ALLOW,
    Outcome.DENY: resources_pb2.OUTCOME_DENY,
}


def decision_to_proto(decision: Decision) -> resources_pb2.Decision:
    return resources_pb2.Decision(
        outcome=_OUTCOMES[decision.outcome],
        violations=[
            resources_pb2.Violation(
                rule_id=violation.rule_id,
                reason_code=violation.reason_code,
                explanation_en=violation.explanation_en,
                explanation_th=violation.explanation_th,
            )
            for violation in decision.violations
        ],
        rule_set_version=decision.rule_set_version,
        evaluated_rule_ids=list(decision.evaluated_rule_ids),
    )
