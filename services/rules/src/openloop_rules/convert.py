"""Rules-service values to and from the wire."""

from __future__ import annotations

import functools
import re

from openloop.rules.v1 import resources_pb2
from openloop_rules.decision import Decision, Outcome
from openloop_rules.ruleset import RULE_SET_VERSION, RuleSetDocument, parse_rule_set
from openloop_rules.scopes import scope_value
from openloop_rules.store.activations import Activation, ActivationKind
from openloop_rules.store.catalog import StoredRuleSet
from openloop_runtime.errors import invalid_field
from openloop_runtime.names import parse_name
from openloop_runtime.timestamps import to_timestamp

OUTCOMES = {
    Outcome.ALLOW: resources_pb2.OUTCOME_ALLOW,
    Outcome.DENY: resources_pb2.OUTCOME_DENY,
}
_KINDS = {
    ActivationKind.ACTIVATE: resources_pb2.ACTIVATION_KIND_ACTIVATE,
    ActivationKind.ROLLBACK: resources_pb2.ACTIVATION_KIND_ROLLBACK,
    ActivationKind.BOOTSTRAP: resources_pb2.ACTIVATION_KIND_BOOTSTRAP,
}
_VERSION = re.compile(RULE_SET_VERSION)


def decision_to_proto(decision: Decision, program: str) -> resources_pb2.Decision:
    return resources_pb2.Decision(
        outcome=OUTCOMES[decision.outcome],
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
        evaluated_rule_ids=decision.evaluated_rule_ids,
        program=program,
    )


@functools.lru_cache(maxsize=4096)
def cached_decision_proto(decision: Decision, program: str) -> resources_pb2.Decision:
    """The same decision's proto, built once: most decisions are one of a few (every allowed
    decision of a scope is identical). Callers copy it into their response, never mutate it."""
    return decision_to_proto(decision, program)


def program_name(program_id: str) -> str:
    return f"programs/{program_id}"


def parse_program_name(name: str, field: str = "program") -> str:
    return parse_name(name, "programs", field=field)


def rule_set_name(version: str) -> str:
    return f"ruleSets/{version}"


def parse_rule_set_name(name: str, field: str = "name") -> str:
    version = name.removeprefix("ruleSets/")
    if version == name or _VERSION.fullmatch(version) is None:
        raise invalid_field(field, f"{field} must look like 'ruleSets/{{version}}'")
    return version


def rule_set_to_proto(
    stored: StoredRuleSet, *, active: bool, with_document: bool = True
) -> resources_pb2.RuleSet:
    document: RuleSetDocument = parse_rule_set(stored.document)
    return resources_pb2.RuleSet(
        name=rule_set_name(stored.version),
        version=stored.version,
        program=program_name(stored.program_id),
        program_version=stored.program_version or "",
        phase=document.phase or 0,
        description=document.description,
        rules=[
            resources_pb2.Rule(
                id=rule.id,
                title_en=rule.title_en,
                title_th=rule.title_th,
                scopes=[scope_value(scope) for scope in rule.scopes],
                effect=rule.effect.value,
                condition=rule.condition,
                reason_code=rule.reason_code,
                explanation_en=rule.explanation_en,
                explanation_th=rule.explanation_th,
            )
            for rule in document.rules
        ],
        document=stored.document if with_document else "",
        sha256=stored.sha256,
        publish_time=to_timestamp(stored.created_at),
        published_by=stored.published_by,
        active=active,
    )


def activation_to_proto(activation: Activation) -> resources_pb2.Activation:
    return resources_pb2.Activation(
        name=f"programs/{activation.program_id}/activations/{activation.activation_id}",
        rule_set=rule_set_name(activation.version),
        effective_time=to_timestamp(activation.effective_at),
        create_time=to_timestamp(activation.activated_at),
        kind=_KINDS[activation.kind],
        actor=activation.actor,
        reason=activation.reason,
    )
