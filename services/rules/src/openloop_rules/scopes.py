"""Scope names as rule sets spell them: the proto ``Scope`` value without prefix, lower case.

``SCOPE_ROUND1_PAYMENT`` is ``round1_payment``. Deriving them from the enum keeps the
documents and the contract in step.
"""

from __future__ import annotations

from openloop.rules.v1 import resources_pb2

_PREFIX = "SCOPE_"

_NAMES: dict[int, str] = {
    number: name.removeprefix(_PREFIX).lower()
    for name, number in resources_pb2.Scope.items()
    if number != resources_pb2.SCOPE_UNSPECIFIED
}
_VALUES = {name: resources_pb2.Scope.ValueType(number) for number, name in _NAMES.items()}

KNOWN_SCOPES = frozenset(_NAMES.values())


def scope_name(scope: int) -> str | None:
    """The rule-set name of ``scope``; None for UNSPECIFIED or a value this build lacks."""
    return _NAMES.get(scope)


def scope_value(name: str) -> resources_pb2.Scope.ValueType:
    return _VALUES[name]
