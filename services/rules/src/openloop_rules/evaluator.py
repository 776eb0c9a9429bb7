"""A rule set compiled once, then evaluated on every payment without I/O.

Every rule's CEL condition is compiled when the rule set is loaded and run
against :data:`~openloop_rules.facts.PROBE_FACTS`; a rule that does not compile,
fails on a complete set of facts, or gives anything but a bool makes the whole
rule set unloadable. At evaluation time any failure of a condition denies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cel

from openloop_rules import decision
from openloop_rules.decision import Decision, Violation
from openloop_rules.facts import PROBE_FACTS, PaymentFactSet
from openloop_rules.ruleset import Rule, RuleSetDocument, RuleSetError, parse_rule_set

_log = logging.getLogger(__name__)

_UNDEFINED = "Undefined variable or function: '"
_FACT_NAMES = frozenset(PROBE_FACTS)
"""Top-level names a condition may read; any other undefined name is a broken rule."""


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    program: cel.Program

    def check(self, context: cel.Context) -> Violation | None:
        """None when the payment satisfies the rule, else why it does not."""
        rule = self.rule
        try:
            result = self.program.execute(context)
        except KeyError as error:  # a map lookup of an absent fact: payee.size_class
            return decision.missing_fact(str(error.args[0]) if error.args else "?", rule.id)
        except RuntimeError as error:  # an absent top-level fact: amount_satang
            message = str(error)
            name = message.removeprefix(_UNDEFINED).split("'", 1)[0]
            if message.startswith(_UNDEFINED) and name in _FACT_NAMES:
                return decision.missing_fact(name, rule.id)
            _log.warning("rule failed", extra={"rule_id": rule.id, "error": type(error).__name__})
            return decision.rule_evaluation_error(rule.id)
        except Exception as error:  # a type error in the condition: deny, never allow
            _log.warning("rule failed", extra={"rule_id": rule.id, "error": type(error).__name__})
            return decision.rule_evaluation_error(rule.id)
        if not isinstance(result, bool):
            _log.warning("rule gave a non-bool", extra={"rule_id": rule.id})
            return decision.rule_evaluation_error(rule.id)
        if result:
            return None
        return Violation(rule.id, rule.reason_code, rule.explanation_en, rule.explanation_th)


def compile_rule(rule: Rule) -> CompiledRule:
    try:
        program = cel.compile(rule.condition)
    except Exception as error:
        raise RuleSetError(f"rule {rule.id}: condition does not compile: {error}") from error
    try:
        probe = program.execute(cel.Context(PROBE_FACTS))
    except Exception as error:
        raise RuleSetError(
            f"rule {rule.id}: condition fails on a complete set of facts: {error}"
        ) from error
    if not isinstance(probe, bool):
        raise RuleSetError(
            f"rule {rule.id}: condition must give a bool, gave {type(probe).__name__}"
        )
    return CompiledRule(rule, program)


class CompiledRuleSet:
    """One version of the program's rules, ready to decide payments."""

    def __init__(self, document: RuleSetDocument) -> None:
        self.version = document.version
        self._rules = tuple(compile_rule(rule) for rule in document.rules)
        self._by_scope = {
            scope: tuple(rule for rule in self._rules if scope in rule.rule.scopes)
            for rule in self._rules
            for scope in rule.rule.scopes
        }

    @classmethod
    def from_text(cls, document: str) -> CompiledRuleSet:
        return cls(parse_rule_set(document))

    def rule_ids(self, scope: str) -> tuple[str, ...]:
        return tuple(rule.rule.id for rule in self._by_scope.get(scope, ()))

    def evaluate(self, scope: str, facts: PaymentFactSet) -> Decision:
        """Every violation, facts first, then rules in rule-set order."""
        rules = self._by_scope.get(scope, ())
        violations = [decision.missing_fact(path) for path in facts.missing]
        if not rules:
            violations.append(decision.no_rules_for_scope(scope))
        context = cel.Context(facts.values)
        for rule in rules:
            violation = rule.check(context)
            if violation is not None:
                violations.append(violation)
        return decision.decide(
            tuple(violations), self.version, tuple(rule.rule.id for rule in rules)
        )
