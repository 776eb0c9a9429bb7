"""CEL's types as the rule checker sees them: primitives, lists, maps and named records.

A *record* is a group of facts with declared fields (``payer``, ``program.phase``); at run
time it is a CEL map, but the checker knows each field's type, so ``payer.distrct_code``
is refused at publish instead of failing on some later payment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CelType:
    name: str
    """``bool``, ``int``, ``uint``, ``double``, ``string``, ``bytes``, ``timestamp``,
    ``duration``, ``null``, ``dyn``, ``list``, ``map`` or a record's name."""
    params: tuple[CelType, ...] = ()
    """The element type of a list; the key and value types of a map."""
    fields: Mapping[str, CelType] | None = field(default=None, compare=False)
    """A record's declared fields; None for every other type."""

    def __str__(self) -> str:
        if self.params:
            return f"{self.name}({', '.join(str(param) for param in self.params)})"
        return self.name

    @property
    def is_record(self) -> bool:
        return self.fields is not None


BOOL = CelType("bool")
INT = CelType("int")
UINT = CelType("uint")
DOUBLE = CelType("double")
STRING = CelType("string")
BYTES = CelType("bytes")
TIMESTAMP = CelType("timestamp")
DURATION = CelType("duration")
NULL = CelType("null")
DYN = CelType("dyn")

NUMBERS = frozenset({INT, UINT, DOUBLE})
ORDERED = frozenset({INT, UINT, DOUBLE, STRING, BYTES, TIMESTAMP, DURATION, BOOL})


def list_of(element: CelType) -> CelType:
    return CelType("list", (element,))


def map_of(key: CelType, value: CelType) -> CelType:
    return CelType("map", (key, value))


def record(name: str, fields: Mapping[str, CelType]) -> CelType:
    return CelType(name, fields=dict(fields))


def assignable(expected: CelType, actual: CelType) -> bool:
    """Whether a value of ``actual`` type can stand where ``expected`` is needed."""
    if DYN in (expected, actual):
        return True
    if expected.name != actual.name or len(expected.params) != len(actual.params):
        return False
    return all(assignable(e, a) for e, a in zip(expected.params, actual.params, strict=True))


def common(left: CelType, right: CelType) -> CelType | None:
    """The type both sides share (for ``==`` and the branches of ``?:``), or None."""
    if left == DYN:
        return right
    if right == DYN:
        return left
    if left == NULL and right.name in ("map", "list", "dyn", "timestamp", "duration"):
        return right
    if right == NULL and left.name in ("map", "list", "dyn", "timestamp", "duration"):
        return left
    if assignable(left, right):
        return left
    return None
