"""Type-checks a condition against the declared facts and rewrites it for fast evaluation.

The check refuses, with the position of the offending part: a fact or field that is not
declared in :mod:`openloop_rules.factschema`, a group of facts that the rule's scopes do not
supply, an operator or function applied to the wrong types, an unknown function, and a
condition that is not a bool. It follows CEL's typing rules: no implicit conversions, so
``payer.age_years > "16"`` or ``transaction.amount_satang > 1.5`` are refused.

The rewrite turns ``payer.district_code`` into the flat variable ``payer__district_code``
and replaces ``program.*`` by literals of the rule set's program, so evaluating a decision
converts a few scalars rather than nested maps, and program parameters cost nothing.

A second, faster text is also written for the combined program of a scope (see
:mod:`openloop_rules.encoding`): a timestamp fact that the condition only ever compares
(``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``) with timestamp constants or with other such
facts travels as its int microseconds since the epoch, and a string fact only ever
compared for (in)equality with string constants or such facts travels as an int code.
Handing CEL an int costs a fraction of a string or a timestamp, and the timestamp
constants become int literals instead of ``timestamp("...")`` parsed at every evaluation.
Either form gives the same answer; any other use of a fact keeps it as it is.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cel

from openloop_rules import encoding, factschema
from openloop_rules.cel_syntax import (
    Binary,
    Call,
    Conditional,
    Ident,
    Index,
    ListLiteral,
    Literal,
    MapLiteral,
    Node,
    Select,
    Unary,
)
from openloop_rules.cel_types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    NUMBERS,
    ORDERED,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    assignable,
    common,
    list_of,
    map_of,
)


class CelCheckError(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class CheckedCondition:
    text: str
    """The condition rewritten over flat fact variables and program literals."""
    variables: frozenset[str]
    """The flat fact variables it reads."""
    fast_text: str = ""
    """The same condition with some facts encoded as ints (see the module's docstring)."""
    fast_inputs: tuple[encoding.Input, ...] = ()
    """The variables ``fast_text`` reads, each with the fact and encoding it comes from."""


_NO_VALUE = object()
"""Marks a checked expression that is not a compile-time constant."""

_LITERAL_TYPES = {
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "string": STRING,
    "bytes": BYTES,
    "bool": BOOL,
    "null": NULL,
}
_CONVERSIONS: Mapping[str, tuple[CelType, frozenset[CelType]]] = {
    "int": (INT, frozenset({INT, UINT, DOUBLE, STRING, TIMESTAMP})),
    "uint": (UINT, frozenset({INT, UINT, DOUBLE, STRING})),
    "double": (DOUBLE, frozenset({INT, UINT, DOUBLE, STRING})),
    "string": (STRING, frozenset({INT, UINT, DOUBLE, STRING, BYTES, BOOL, TIMESTAMP, DURATION})),
    "timestamp": (TIMESTAMP, frozenset({STRING, TIMESTAMP})),
    "duration": (DURATION, frozenset({STRING, DURATION})),
}
_STRING_PREDICATES = frozenset({"contains", "startsWith", "endsWith", "matches"})
_TIMESTAMP_PARTS = frozenset(
    {
        "getFullYear", "getMonth", "getDayOfMonth", "getDate", "getDayOfWeek", "getDayOfYear",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip
_DURATION_PARTS = frozenset({"getHours", "getMinutes", "getSeconds", "getMilliseconds"})
_MACROS = frozenset({"exists", "all", "exists_one", "map", "filter"})
_UNROLLED = frozenset({"exists", "all"})


_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_EQUALITIES = frozenset({"==", "!="})


@dataclass(frozen=True, slots=True)
class _Checked:
    type: CelType
    text: str
    value: Any = _NO_VALUE
    fact: str | None = None
    """The flat fact variable when the expression is exactly one fact."""


def literal(value: Any) -> str:
    """CEL source for a program parameter."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return f'timestamp("{moment}")'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no CEL literal for {type(value).__name__}")


def _constant_value(checked: _Checked, kind: CelType) -> bool:
    """Whether ``checked`` is a constant the encodings can represent exactly."""
    value = checked.value
    if value is _NO_VALUE:
        return False
    if kind == STRING:
        return type(value) is str
    return isinstance(value, datetime) and value.tzinfo is not None


@dataclass
class _Uses:
    """How the condition uses each fact: how often, how often in an encodable comparison,
    and with which facts it is compared there (their encodings must agree)."""

    all: Counter[str] = field(default_factory=Counter)
    comparable: Counter[str] = field(default_factory=Counter)
    partners: dict[str, set[str]] = field(default_factory=dict)

    def encodable(self, types: Mapping[str, CelType]) -> frozenset[str]:
        chosen = {
            name
            for name, count in self.all.items()
            if types[name] in (STRING, TIMESTAMP) and self.comparable[name] == count
        }
        changed = True
        while changed:
            changed = False
            for name in list(chosen):
                if not self.partners.get(name, set()) <= chosen:
                    chosen.discard(name)
                    changed = True
        return frozenset(chosen)


class _Checker:
    def __init__(
        self,
        scopes: frozenset[str],
        constants: Mapping[str, Any] | None,
        encoded: frozenset[str] = frozenset(),
        codes: dict[str, int] | None = None,
    ) -> None:
        self._scopes = scopes
        self._constants = constants
        self.variables: set[str] = set()
        self.types: dict[str, CelType] = {}
        self.uses = _Uses()
        self._encoded = encoded
        self._codes = codes if codes is not None else {}
        self._bound: dict[str, Any] = {}
        """Comprehension variables bound to one element of a constant list (unrolled)."""

    def check(self, node: Node, env: Mapping[str, CelType]) -> _Checked:
        handler: Callable[[Any, Mapping[str, CelType]], _Checked] = getattr(
            self, f"_{type(node).__name__.lower()}"
        )
        return handler(node, env)

    def _literal(self, node: Literal, env: Mapping[str, CelType]) -> _Checked:
        if node.kind == "string":
            return _Checked(STRING, node.text, _cel_constant(node.text, str))
        return _Checked(_LITERAL_TYPES[node.kind], node.text)

    def _ident(self, node: Ident, env: Mapping[str, CelType]) -> _Checked:
        if node.name in self._bound:
            value = self._bound[node.name]
            return _Checked(env[node.name], literal(value), value)
        if node.name in env:
            return _Checked(env[node.name], node.name)
        if node.name in factschema.CONSTANT_GROUPS:
            self._supplied(node.name, node.offset)
            if self._constants is None:
                raise CelCheckError(
                    f"'{node.name}' facts need the rule set to name a program version",
                    node.offset,
                )
            value = self._constants
            return _Checked(factschema.GROUPS[node.name], literal(value), value)
        if node.name in factschema.GROUPS:
            raise CelCheckError(
                f"'{node.name}' is a group of facts: read one of its fields, "
                f"e.g. {node.name}.{next(iter(factschema.GROUPS[node.name].fields or {}))}",
                node.offset,
            )
        raise CelCheckError(f"unknown fact '{node.name}'", node.offset)

    def _supplied(self, group: str, offset: int) -> None:
        missing = sorted(self._scopes - factschema.SUPPLIED_IN[group])
        if missing:
            raise CelCheckError(
                f"'{group}' facts are not supplied in scope {', '.join(missing)}", offset
            )

    def _select(self, node: Select, env: Mapping[str, CelType]) -> _Checked:
        operand = node.operand
        if (
            isinstance(operand, Ident)
            and operand.name not in env
            and operand.name in factschema.GROUPS
            and operand.name not in factschema.CONSTANT_GROUPS
        ):
            group = factschema.GROUPS[operand.name]
            assert group.fields is not None
            if node.field not in group.fields:
                raise CelCheckError(f"unknown fact '{operand.name}.{node.field}'", node.offset)
            self._supplied(operand.name, operand.offset)
            flat = factschema.flat_name(operand.name, node.field)
            self.variables.add(flat)
            self.types[flat] = group.fields[node.field]
            self.uses.all[flat] += 1
            return _Checked(group.fields[node.field], flat, fact=flat)
        checked = self.check(operand, env)
        kind = checked.type
        if kind.fields is not None:
            if node.field not in kind.fields:
                raise CelCheckError(f"{kind.name} has no field '{node.field}'", node.offset)
            field_type = kind.fields[node.field]
            if checked.value is not _NO_VALUE:
                value = checked.value[node.field]
                return _Checked(field_type, literal(value), value)
            return _Checked(field_type, f"{checked.text}.{node.field}")
        if kind.name == "map" and kind.params[0] in (STRING, DYN):
            return _Checked(kind.params[1], f"{checked.text}.{node.field}")
        if kind == DYN:
            return _Checked(DYN, f"{checked.text}.{node.field}")
        raise CelCheckError(f"a {kind} has no field '{node.field}'", node.offset)

    def _index(self, node: Index, env: Mapping[str, CelType]) -> _Checked:
        operand = self.check(node.operand, env)
        index = self.check(node.index, env)
        kind = operand.type
        text = f"{operand.text}[{index.text}]"
        if kind.name == "list" and assignable(INT, index.type):
            return _Checked(kind.params[0], text)
        if kind.name == "map" and assignable(kind.params[0], index.type):
            return _Checked(kind.params[1], text)
        if kind == DYN:
            return _Checked(DYN, text)
        raise CelCheckError(f"cannot index a {kind} with a {index.type}", node.offset)

    def _unary(self, node: Unary, env: Mapping[str, CelType]) -> _Checked:
        operand = self.check(node.operand, env)
        if node.op == "!":
            self._expect(BOOL, operand.type, "'!'", node.offset)
            return _Checked(BOOL, f"!({operand.text})")
        if operand.type not in (INT, DOUBLE, DURATION, DYN):
            raise CelCheckError(f"cannot negate a {operand.type}", node.offset)
        if isinstance(node.operand, Literal):
            # A negative literal stays one: -(9223372036854775808) overflows, -9223372036854775808
            # is the smallest int.
            return _Checked(operand.type, f"-{operand.text}")
        return _Checked(operand.type, f"-({operand.text})")

    def _binary(self, node: Binary, env: Mapping[str, CelType]) -> _Checked:
        left = self.check(node.left, env)
        right = self.check(node.right, env)
        result = _binary_type(node.op, left.type, right.type)
        if result is None:
            raise CelCheckError(
                f"'{node.op}' cannot apply to {left.type} and {right.type}", node.offset
            )
        if self._comparable(node.op, left, right):
            facts = [side.fact for side in (left, right) if side.fact is not None]
            for fact in facts:
                self.uses.comparable[fact] += 1
                self.uses.partners.setdefault(fact, set()).update(f for f in facts if f != fact)
            if all(fact in self._encoded for fact in facts):
                return _Checked(BOOL, f"({self._fast(left)} {node.op} {self._fast(right)})")
        return _Checked(result, f"({left.text} {node.op} {right.text})")

    @staticmethod
    def _comparable(op: str, left: _Checked, right: _Checked) -> bool:
        """A comparison the encodings keep: facts or exact constants of one encodable type,
        at least one a fact."""
        kind = left.type
        if right.type != kind or op not in (_EQUALITIES if kind == STRING else _COMPARISONS):
            return False
        if kind not in (STRING, TIMESTAMP) or (left.fact is None and right.fact is None):
            return False
        return all(side.fact is not None or _constant_value(side, kind) for side in (left, right))

    def _fast(self, side: _Checked) -> str:
        if side.fact is not None:
            return encoding.encoded_name(side.fact, side.type == TIMESTAMP)
        if side.type == TIMESTAMP:
            return str(encoding.micros(side.value))
        return str(encoding.code(self._codes, side.value))

    def _conditional(self, node: Conditional, env: Mapping[str, CelType]) -> _Checked:
        condition = self.check(node.condition, env)
        self._expect(BOOL, condition.type, "the condition of '?:'", node.offset)
        if_true = self.check(node.if_true, env)
        if_false = self.check(node.if_false, env)
        shared = common(if_true.type, if_false.type)
        if shared is None:
            raise CelCheckError(
                f"the branches of '?:' differ: {if_true.type} and {if_false.type}", node.offset
            )
        return _Checked(shared, f"({condition.text} ? {if_true.text} : {if_false.text})")

    def _listliteral(self, node: ListLiteral, env: Mapping[str, CelType]) -> _Checked:
        items = [self.check(item, env) for item in node.items]
        element = _shared([item.type for item in items])
        return _Checked(list_of(element), "[" + ", ".join(item.text for item in items) + "]")

    def _mapliteral(self, node: MapLiteral, env: Mapping[str, CelType]) -> _Checked:
        pairs = [(self.check(k, env), self.check(v, env)) for k, v in node.entries]
        key = _shared([k.type for k, _ in pairs])
        value = _shared([v.type for _, v in pairs])
        text = "{" + ", ".join(f"{k.text}: {v.text}" for k, v in pairs) + "}"
        return _Checked(map_of(key, value), text)

    def _call(self, node: Call, env: Mapping[str, CelType]) -> _Checked:
        if node.function == "has":
            raise CelCheckError(
                "has() is not available: a fact that may be absent has its own flag, "
                "e.g. payer.has_first_use",
                node.offset,
            )
        if node.target is not None and node.function in _MACROS:
            return self._macro(node, node.target, env)
        target = self.check(node.target, env) if node.target is not None else None
        args = [self.check(arg, env) for arg in node.args]
        receiver = [target] if target is not None else []
        result = _function_type(node.function, [*receiver, *args], method=target is not None)
        if result is None:
            shown = ", ".join(str(a.type) for a in (*receiver, *args))
            raise CelCheckError(f"no function {node.function}({shown})", node.offset)
        arg_text = ", ".join(arg.text for arg in args)
        if target is not None:
            return _Checked(result, f"{target.text}.{node.function}({arg_text})")
        text = f"{node.function}({arg_text})"
        if (
            node.function == "timestamp"
            and args[0].type == STRING
            and _constant_value(args[0], STRING)
        ):
            return _Checked(result, text, _cel_constant(text, datetime))
        return _Checked(result, text)

    def _macro(self, node: Call, target_node: Node, env: Mapping[str, CelType]) -> _Checked:
        if len(node.args) != 2 or not isinstance(node.args[0], Ident):
            raise CelCheckError(
                f"{node.function}() takes a variable and an expression", node.offset
            )
        variable = node.args[0].name
        if variable in factschema.GROUPS:
            raise CelCheckError(f"'{variable}' names a group of facts", node.args[0].offset)
        target = self.check(target_node, env)
        kind = target.type
        if kind.name in {"list", "map"}:
            element = kind.params[0]
        elif kind == DYN:
            element = DYN
        else:
            raise CelCheckError(f"{node.function}() needs a list or a map, not {kind}", node.offset)
        if target.value is not _NO_VALUE and node.function in _UNROLLED:
            return self._unrolled(node, variable, element, target.value, env)
        body = self.check(node.args[1], {**env, variable: element})
        text = f"{target.text}.{node.function}({variable}, {body.text})"
        if node.function == "map":
            return _Checked(list_of(body.type), text)
        self._expect(BOOL, body.type, f"the expression of {node.function}()", node.args[1].offset)
        if node.function == "filter":
            return _Checked(list_of(element), text)
        return _Checked(BOOL, text)

    def _unrolled(
        self,
        node: Call,
        variable: str,
        element: CelType,
        values: Any,
        env: Mapping[str, CelType],
    ) -> _Checked:
        """``exists``/``all`` over a program list, as one disjunction/conjunction.

        Building a literal list of maps (with timestamps) costs more on every decision
        than the whole of the other rules; the unrolled form compares a few literals.
        """
        inner = {**env, variable: element}
        bodies: list[str] = []
        for value in values if isinstance(values, list | tuple) else list(values):
            self._bound[variable] = value
            try:
                body = self.check(node.args[1], inner)
            finally:
                del self._bound[variable]
            self._expect(
                BOOL, body.type, f"the expression of {node.function}()", node.args[1].offset
            )
            bodies.append(f"({body.text})")
        if not bodies:
            self.check(node.args[1], inner)
            return _Checked(BOOL, "false" if node.function == "exists" else "true")
        joiner = " || " if node.function == "exists" else " && "
        return _Checked(BOOL, "(" + joiner.join(bodies) + ")")

    @staticmethod
    def _expect(expected: CelType, actual: CelType, what: str, offset: int) -> None:
        if not assignable(expected, actual):
            raise CelCheckError(f"{what} needs a {expected}, not a {actual}", offset)


def _cel_constant(text: str, kind: type) -> Any:
    """The value CEL itself gives the constant expression ``text``, when it is exactly a
    ``kind`` (a timestamp with nanoseconds is not a Python datetime): else not a constant."""
    try:
        value = cel.evaluate(text)
    except Exception:
        return _NO_VALUE
    if type(value) is not kind:
        return _NO_VALUE
    if isinstance(value, datetime) and (
        value.tzinfo is None or cel.evaluate(f"{text} == {literal(value)}") is not True
    ):
        return _NO_VALUE
    return value


def _shared(types: list[CelType]) -> CelType:
    if not types:
        return DYN
    shared: CelType | None = types[0]
    for other in types[1:]:
        shared = common(shared, other) if shared is not None else None
    return shared if shared is not None else DYN


def _binary_type(op: str, left: CelType, right: CelType) -> CelType | None:
    if op in ("&&", "||"):
        return BOOL if assignable(BOOL, left) and assignable(BOOL, right) else None
    if op in ("==", "!="):
        return BOOL if common(left, right) is not None else None
    if op in ("<", "<=", ">", ">="):
        if DYN in (left, right):
            return BOOL
        return BOOL if left == right and left in ORDERED else None
    if op == "in":
        if right == DYN:
            return BOOL
        if right.name in ("list", "map") and common(right.params[0], left) is not None:
            return BOOL
        return None
    if DYN in (left, right):
        return DYN
    return _arithmetic(op, left, right)


def _arithmetic(op: str, left: CelType, right: CelType) -> CelType | None:
    if op == "+":
        if left == right and (left in NUMBERS or left in (STRING, BYTES, DURATION)):
            return left
        if left.name == "list" and right.name == "list":
            return list_of(_shared([left.params[0], right.params[0]]))
        if {left, right} == {TIMESTAMP, DURATION}:
            return TIMESTAMP
        return None
    if op == "-":
        if left == right and (left in NUMBERS or left == DURATION):
            return left
        if left == TIMESTAMP and right == TIMESTAMP:
            return DURATION
        if left == TIMESTAMP and right == DURATION:
            return TIMESTAMP
        return None
    if op in ("*", "/"):
        return left if left == right and left in NUMBERS else None
    if op == "%":
        return left if left == right and left in (INT, UINT) else None
    return None


def _function_type(name: str, args: list[_Checked], *, method: bool) -> CelType | None:
    types = [arg.type for arg in args]
    if DYN in types and name in {*_CONVERSIONS, "size", *_STRING_PREDICATES}:
        return _CONVERSIONS[name][0] if name in _CONVERSIONS else (INT if name == "size" else BOOL)
    if name == "size" and len(types) == 1:
        ok = types[0] in (STRING, BYTES) or types[0].name in ("list", "map")
        return INT if ok else None
    if name in _CONVERSIONS and not method and len(types) == 1:
        result, accepted = _CONVERSIONS[name]
        return result if types[0] in accepted else None
    if name in _STRING_PREDICATES and len(types) == 2 and types == [STRING, STRING]:
        return BOOL
    if name in _TIMESTAMP_PARTS and method and types == [TIMESTAMP]:
        return INT
    if name in _DURATION_PARTS and method and types == [DURATION]:
        return INT
    return None


def check_condition(
    tree: Node,
    scopes: frozenset[str],
    constants: Mapping[str, Any] | None,
    codes: dict[str, int] | None = None,
) -> CheckedCondition:
    """The rewritten condition, or :class:`CelCheckError` naming what is wrong and where.

    ``constants`` are the program's parameters (the ``program`` group), or None when the
    rule set names no program version. ``codes`` is the rule set's table of string
    constants' codes, shared by its conditions (one is made when None); it grows with the
    constants this condition's fast text compares.
    """
    checker = _Checker(scopes, constants)
    checked = checker.check(tree, {})
    if not assignable(BOOL, checked.type) or checked.type == DYN:
        raise CelCheckError(f"a condition must be a bool, not a {checked.type}", tree.offset)
    variables = frozenset(checker.variables)
    encoded = checker.uses.encodable(checker.types)
    fast_text = checked.text
    if encoded:
        fast_text = _Checker(scopes, constants, encoded, codes).check(tree, {}).text
    inputs = tuple(
        encoding.input_for(name, checker.types[name] == TIMESTAMP, name in encoded)
        for name in sorted(variables)
    )
    return CheckedCondition(checked.text, variables, fast_text, inputs)
