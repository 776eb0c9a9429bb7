"""Publishing's gate: every rule compiled, type-checked and rewritten, or refused with where.

For each rule, in order: the ``cel`` package parses the condition (its syntax errors carry
a line and column); :mod:`openloop_rules.cel_syntax` parses it again into a tree;
:mod:`openloop_rules.cel_check` checks it against the declared facts and the rule's scopes
and rewrites it; the rewritten text is compiled and run once on a complete set of typed
probe facts, which catches a function the runtime lacks. The rules of each scope are
then also compiled into one CEL list expression, so a decision is a single ``execute``;
that one reads the checker's fast text, with facts encoded as ints where the checker
proved it gives the same answers (see :mod:`openloop_rules.encoding`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import cel

from openloop_rules import encoding, factschema
from openloop_rules.cel_check import CelCheckError, check_condition
from openloop_rules.cel_syntax import CelSyntaxError, line_and_column, parse
from openloop_rules.cel_types import BOOL, INT, STRING, TIMESTAMP, CelType
from openloop_rules.evaluator import CompiledRule, CompiledRuleSet, CompiledScope
from openloop_rules.program import ProgramDocument
from openloop_rules.ruleset import Effect, Rule, RuleSetDocument, RuleSetError, parse_rule_set

_POSITION = re.compile(r"<input>:(\d+):(\d+):")
_UNDEFINED = "Undefined variable or function"
_PROBE_TIME = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
_PROBE_TEXT = {"district_code": "1001", "kind": "MERCHANT", "party": "merchants/probe"}
_TOO_DEEP = (
    "the condition is nested too deeply for the evaluator (a long chain of || or && is "
    "better written as `x in [...]`)"
)
_UNCOMPILABLE = object()


def _probe_value(field: str, kind: CelType) -> Any:
    if kind == STRING:
        return _PROBE_TEXT.get(field, "probe")
    if kind == INT:
        return 1
    if kind == BOOL:
        return True
    if kind == TIMESTAMP:
        return _PROBE_TIME
    return [2023, 2024]


PROBE_FACTS: Mapping[str, Any] = {
    factschema.flat_name(group, field): _probe_value(field, kind)
    for group, record in factschema.GROUPS.items()
    if group not in factschema.CONSTANT_GROUPS
    for field, kind in (record.fields or {}).items()
}
"""A value of the declared type for every fact, the run each rule must survive at publish."""


def _refuse(rule: Rule, message: str, source: str, offset: int | None) -> RuleSetError:
    line, column = line_and_column(source, offset) if offset is not None else (0, 0)
    return RuleSetError(
        f"rule {rule.id}: {message}",
        rule_id=rule.id,
        line=line,
        column=column,
        field="condition",
    )


def compile_rule(
    rule: Rule, constants: Mapping[str, Any] | None, codes: dict[str, int] | None = None
) -> CompiledRule:
    """The rule ready to run, or :class:`RuleSetError` saying what is wrong and where.

    ``codes`` is the rule set's table of string constants (see :mod:`openloop_rules.encoding`).
    """
    codes = {} if codes is None else codes
    source = rule.condition
    try:
        cel.compile(source)
    except ValueError as error:
        found = _POSITION.search(str(error))
        line, column = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
        raise RuleSetError(
            f"rule {rule.id}: syntax error: {_cel_detail(error)}",
            rule_id=rule.id,
            line=line,
            column=column,
            field="condition",
        ) from error
    try:
        checked = check_condition(parse(source), frozenset(rule.scopes), constants, codes)
    except (CelSyntaxError, CelCheckError) as error:
        raise _refuse(rule, str(error), source, error.offset) from error
    except RecursionError as error:  # CEL takes 2000 '!' in a row; this parser recurses
        raise _refuse(rule, _TOO_DEEP, source, 0) from error
    try:
        program = cel.compile(checked.text)
    except ValueError as error:  # the rewrite's parentheses pass CEL's nesting limit
        raise _refuse(rule, f"{_TOO_DEEP} ({_cel_detail(error)})", source, 0) from error
    try:
        probe = program.execute({name: PROBE_FACTS[name] for name in checked.variables})
    except RuntimeError as error:
        if _UNDEFINED in str(error):
            raise _refuse(rule, f"not supported by the evaluator: {error}", source, 0) from error
        probe = True
    except Exception:  # a data-dependent failure (int("probe")); the types are checked
        probe = True
    if not isinstance(probe, bool):
        raise _refuse(rule, "the condition does not give a bool", source, 0)
    fast_text, fast_inputs = checked.fast_text, checked.fast_inputs
    if fast_text != checked.text and _probe_fast(fast_text, fast_inputs, codes) != probe:
        fast_text = checked.text  # never expected: keep the plain form rather than guess
        fast_inputs = tuple(encoding.input_for(n, False, False) for n in sorted(checked.variables))
    return CompiledRule(
        rule=rule,
        program=program,
        variables=checked.variables,
        violated_when=rule.effect is Effect.DENY,
        fast_source=fast_text,
        fast_inputs=fast_inputs,
    )


def _probe_fast(text: str, inputs: tuple[encoding.Input, ...], codes: Mapping[str, int]) -> object:
    try:
        program = cel.compile(text)
    except ValueError:
        return _UNCOMPILABLE  # never expected, the fast text nests as the plain one: keep that
    try:
        return program.execute(encoding.context(inputs, codes, PROBE_FACTS))
    except Exception:  # a data-dependent failure, as for the plain form
        return True


def _cel_detail(error: ValueError) -> str:
    """The first line of what ``cel.compile`` said, without the expression it repeats."""
    return str(error).split("ERROR: ", 1)[-1].split("\n", 1)[0][:300]


def _combined(scope: str, members: tuple[CompiledRule, ...]) -> Any:
    """The scope's rules compiled as one list expression; a rule that compiles alone can
    still be one level too deep as an item of the list, and is then refused by name."""
    try:
        return cel.compile("[" + ", ".join(rule.fast_source for rule in members) + "]")
    except ValueError as error:
        combined_error = error
    for member in members:
        try:
            cel.compile(f"[{member.fast_source}]")
        except ValueError as error:
            refused = _refuse(
                member.rule, f"{_TOO_DEEP} ({_cel_detail(error)})", member.rule.condition, 0
            )
            raise refused from error
    raise RuleSetError(
        f"the rules of scope {scope} do not compile together: {_cel_detail(combined_error)}",
        field="rules",
    ) from combined_error


def compile_rule_set(
    document: RuleSetDocument, program: ProgramDocument | None, sha256: str = ""
) -> CompiledRuleSet:
    """The rule set ready to decide, or :class:`RuleSetError` for the first broken rule.

    ``program`` must be the version the document names (None when it names none).
    """
    constants: dict[str, Any] | None = None
    if document.program_version is not None:
        if program is None or program.key != (document.program, document.program_version):
            raise RuleSetError(
                f"program {document.program} {document.program_version} is not available",
                field="program_version",
            )
        try:
            constants = program.constants(document.phase)
        except ValueError as error:
            raise RuleSetError(str(error), field="phase") from error
    codes: dict[str, int] = {}
    rules = tuple(compile_rule(rule, constants, codes) for rule in document.rules)
    scopes: dict[str, CompiledScope] = {}
    for scope in sorted({scope for rule in rules for scope in rule.rule.scopes}):
        members = tuple(rule for rule in rules if scope in rule.rule.scopes)
        combined = _combined(scope, members)
        required = tuple(
            factschema.flat_name(*path.split(".", 1)) for path in factschema.REQUIRED[scope]
        )
        inputs = {item.name: item for rule in members for item in rule.fast_inputs}
        scopes[scope] = CompiledScope(
            members, combined, required, tuple(inputs[name] for name in sorted(inputs)), codes
        )
    return CompiledRuleSet(
        version=document.version,
        program_id=document.program,
        program=program if document.program_version is not None else None,
        scopes=scopes,
        sha256=sha256,
    )


def compile_text(
    text: str, programs: Mapping[tuple[str, str], ProgramDocument], sha256: str = ""
) -> CompiledRuleSet:
    """Parse and compile ``text``, taking its program from ``programs`` by (id, version)."""
    document = parse_rule_set(text)
    program = None
    if document.program_version is not None:
        program = programs.get((document.program, document.program_version))
    return compile_rule_set(document, program, sha256)
