"""What an evaluation answers, independent of protobuf.

Besides each rule's own reason code, a few reasons come from the evaluator
itself. All of them deny: when the platform cannot tell whether a payment obeys
the rules, it does not let it through.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

MISSING_FACT = "MISSING_FACT"
"""A fact the decision needs was not supplied (for example an empty district code)."""
RULE_EVALUATION_ERROR = "RULE_EVALUATION_ERROR"
"""A rule's condition failed on these facts or gave something other than a bool."""
NO_ACTIVE_RULE_SET = "NO_ACTIVE_RULE_SET"
"""Nothing is active, so nothing can be allowed."""
NO_RULES_FOR_SCOPE = "NO_RULES_FOR_SCOPE"
"""The active rule set says nothing about this scope: an omission, not a permission."""


class Outcome(Enum):
    ALLOW = "ALLOW"
    DENY = "DENY"


@dataclass(frozen=True)
class Violation:
    rule_id: str
    """The rule broken; empty when the violation is about the facts or the rule set."""
    reason_code: str
    explanation_en: str
    explanation_th: str


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    violations: tuple[Violation, ...]
    rule_set_version: str
    evaluated_rule_ids: tuple[str, ...]


def decide(
    violations: tuple[Violation, ...], rule_set_version: str, evaluated_rule_ids: tuple[str, ...]
) -> Decision:
    """Allowed exactly when nothing is violated."""
    outcome = Outcome.DENY if violations else Outcome.ALLOW
    return Decision(outcome, violations, rule_set_version, evaluated_rule_ids)


def no_active_rule_set() -> Decision:
    return decide(
        (
            Violation(
                rule_id="",
                reason_code=NO_ACTIVE_RULE_SET,
                explanation_en="No rule set is active, so no payment can be allowed.",
                explanation_th="ยังไม่มีชุดกฎที่มีผลบังคับใช้ จึงไม่สามารถอนุมัติการชำระเงินได้",
            ),
        ),
        rule_set_version="",
        evaluated_rule_ids=(),
    )


def missing_fact(path: str, rule_id: str = "") -> Violation:
    """``path`` names the fact (``payer.district_code``), never its value."""
    return Violation(
        rule_id=rule_id,
        reason_code=MISSING_FACT,
        explanation_en=f"The fact '{path}' is missing, so the payment cannot be checked.",
        explanation_th=f"ไม่มีข้อมูล '{path}' จึงไม่สามารถตรวจสอบการชำระเงินได้",
    )


def rule_evaluation_error(rule_id: str) -> Violation:
    return Violation(
        rule_id=rule_id,
        reason_code=RULE_EVALUATION_ERROR,
        explanation_en=f"Rule {rule_id} could not be evaluated on this payment.",
        explanation_th=f"ไม่สามารถประเมินกฎ {rule_id} กับการชำระเงินนี้ได้",
    )


def no_rules_for_scope(scope: str) -> Violation:
    return Violation(
        rule_id="",
        reason_code=NO_RULES_FOR_SCOPE,
        explanation_en=f"The active rule set has no rules for {scope}.",
        explanation_th=f"ชุดกฎที่ใช้อยู่ไม่มีกฎสำหรับ {scope}",
    )
