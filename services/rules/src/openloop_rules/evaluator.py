"""A compiled rule set deciding on flat facts, without I/O.

The rules of a scope run as one CEL program returning one bool per rule, reading some
facts encoded as ints (see :mod:`openloop_rules.encoding`). When that
program fails (a fact it reached is absent, or a condition failed on these values), the
rules run one by one so the failure is pinned on the rule and fact it concerns: a missing
fact is MISSING_FACT naming the fact, any other failure RULE_EVALUATION_ERROR. Both deny.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

from openloop.rules.v1 import resources_pb2
from openloop_rules import decision, encoding, factschema
from openloop_rules.decision import Decision, Violation
from openloop_rules.program import ProgramDocument
from openloop_rules.ruleset import Rule
from openloop_rules.wire import Moment, WireInputs

_log = logging.getLogger(__name__)

_UNDEFINED = "Undefined variable or function: '"
_DECIDED_MAX = 4096
"""Bound on the decisions kept by results (at most two to the power of a scope's rules)."""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    program: cel.Program
    variables: frozenset[str]
    """The flat facts the condition may read."""

    violated_when: bool
    """The condition's value that breaks the rule: FALSE for ``require``, TRUE for ``deny``."""

    fast_source: str = ""
    """The condition as the scope's combined program reads it (see ``encoding``)."""
    fast_inputs: tuple[encoding.Input, ...] = ()
    """The variables ``fast_source`` reads and the facts they come from."""

    def violation(self) -> Violation:
        rule = self.rule
        return Violation(rule.id, rule.reason_code, rule.explanation_en, rule.explanation_th)

    def check(self, facts: Mapping[str, Any]) -> Violation | None:
        """None when the facts satisfy the rule, else why they do not."""
        rule = self.rule
        try:
            result = self.program.execute(
                {name: facts[name] for name in self.variables if name in facts}
            )
        except RuntimeError as error:
            message = str(error)
            name = message.removeprefix(_UNDEFINED).split("'", 1)[0]
            if message.startswith(_UNDEFINED) and name in self.variables:
                return decision.missing_fact(factschema.dotted_name(name), rule.id)
            _log.warning("rule failed", extra={"rule_id": rule.id, "error": type(error).__name__})
            return decision.rule_evaluation_error(rule.id)
        except Exception as error:
            _log.warning("rule failed", extra={"rule_id": rule.id, "error": type(error).__name__})
            return decision.rule_evaluation_error(rule.id)
        if not isinstance(result, bool):
            return decision.rule_evaluation_error(rule.id)
        return self.violation() if result is self.violated_when else None


@dataclass(frozen=True, slots=True)
class CompiledScope:
    rules: tuple[CompiledRule, ...]
    combined: cel.Program
    """``[condition_1, condition_2, ...]`` over every rule of the scope."""
    required: tuple[str, ...]
    """Flat facts every decision of the scope needs (see ``factschema.REQUIRED``)."""
    inputs: tuple[encoding.Input, ...] = ()
    """The variables ``combined`` reads and the facts they come from."""
    codes: Mapping[str, int] = field(default_factory=dict)
    """The rule set's string constants' codes (see ``encoding``)."""

    @property
    def variables(self) -> frozenset[str]:
        return frozenset().union(*(rule.variables for rule in self.rules))

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(rule.rule.id for rule in self.rules)


class CompiledRuleSet:
    """One version of a program's rules, ready to decide."""

    def __init__(
        self,
        *,
        version: str,
        program_id: str,
        program: ProgramDocument | None,
        scopes: Mapping[str, CompiledScope],
        sha256: str = "",
    ) -> None:
        self.version = version
        self.program_id = program_id
        self.program = program
        self.sha256 = sha256
        self._scopes = dict(scopes)
        self._inputs = {scope: encoding.Inputs(c.inputs, c.codes) for scope, c in scopes.items()}
        self._rule_ids = {scope: compiled.rule_ids for scope, compiled in scopes.items()}
        self._required = {scope: frozenset(c.required) for scope, c in scopes.items()}
        self._wanted = {scope: c.variables | frozenset(c.required) for scope, c in scopes.items()}
        self._passing = {
            scope: [not rule.violated_when for rule in c.rules] for scope, c in scopes.items()
        }
        """What the combined program gives when every rule of the scope is satisfied."""
        self._allowed = {
            scope: decision.decide((), version, c.rule_ids) for scope, c in scopes.items()
        }
        self.spending_deadline_months = (
            program.spending_deadline.months_after_first_use if program is not None else None
        )
        self._wire = {
            scope: WireInputs(
                c.inputs, c.codes, self._wanted[scope], c.required, self.spending_deadline_months
            )
            for scope, c in scopes.items()
            if scope != factschema.ENROLMENT
        }
        self._decided: dict[tuple[str, tuple[object, ...]], Decision] = {}
        """Decisions by the combined program's results: a scope has few distinct ones."""

    def rule_ids(self, scope: str) -> tuple[str, ...]:
        return self._rule_ids.get(scope, ())

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self._scopes)

    def variables(self, scope: str) -> frozenset[str]:
        """The flat facts a decision of ``scope`` may read or needs: the rest need not be built."""
        return self._wanted.get(scope, frozenset())

    def evaluate(self, scope: str, facts: Mapping[str, Any]) -> Decision:
        """Every violation: missing required facts first, then rules in rule-set order."""
        compiled = self._scopes.get(scope)
        if compiled is None:
            return decision.decide((decision.no_rules_for_scope(scope),), self.version, ())
        try:
            results = compiled.combined.execute(self._inputs[scope].context(facts))
        except Exception:
            results = None
        if results is not None and self._required[scope] <= facts.keys():
            known = self._of_results(scope, results)
            if known is not None:
                return known
        violations = [
            decision.missing_fact(factschema.dotted_name(name))
            for name in compiled.required
            if name not in facts
        ]
        if results is not None and all(isinstance(result, bool) for result in results):
            for rule, result in zip(compiled.rules, results, strict=True):
                if result is rule.violated_when:
                    violations.append(rule.violation())
        else:
            for rule in compiled.rules:
                violation = rule.check(facts)
                if violation is not None:
                    violations.append(violation)
        return decision.decide(tuple(violations), self.version, self._rule_ids[scope])

    def evaluate_wire(
        self, scope: str, message: resources_pb2.PaymentFacts, moment: Moment
    ) -> Decision | None:
        """The decision on a payment message as :meth:`evaluate` would give it on the message's
        facts, read straight off the message (see :mod:`openloop_rules.wire`); None when the
        message needs the general path (anything unusual, malformed or missing)."""
        wire = self._wire.get(scope)
        if wire is None:
            return None
        variables = wire.context(message, moment)
        if variables is None:
            return None
        try:
            results = self._scopes[scope].combined.execute(variables)
        except Exception:
            return None
        return self._of_results(scope, results)

    def _of_results(self, scope: str, results: list[object]) -> Decision | None:
        """The decision when the combined program gave one bool per rule and every required
        fact is present; None when a result is not a bool."""
        if results == self._passing[scope]:
            return self._allowed[scope]
        key = (scope, tuple(results))
        known = self._decided.get(key)
        if known is not None:
            return known
        if not all(isinstance(result, bool) for result in results):
            return None
        rules = self._scopes[scope].rules
        known = decision.decide(
            tuple(
                rule.violation()
                for rule, result in zip(rules, results, strict=True)
                if result is rule.violated_when
            ),
            self.version,
            self._rule_ids[scope],
        )
        if len(self._decided) < _DECIDED_MAX:
            self._decided[key] = known
        return known
