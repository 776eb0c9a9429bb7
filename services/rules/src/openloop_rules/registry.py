"""The rule set deciding payments right now, held in memory.

Evaluate reads only from here, never from the database. Activation (a later
change) compiles the new version first and then swaps it in with one
assignment, so a request sees either the old rule set or the new one, whole.
"""

from __future__ import annotations

from openloop_rules.evaluator import CompiledRuleSet


class ActiveRuleSet:
    def __init__(self, rule_set: CompiledRuleSet | None = None) -> None:
        self._current = rule_set

    @property
    def current(self) -> CompiledRuleSet | None:
        return self._current

    def replace(self, rule_set: CompiledRuleSet | None) -> None:
        self._current = rule_set
