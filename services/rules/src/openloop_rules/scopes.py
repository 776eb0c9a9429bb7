"""Scope names as rule sets spell them: the proto ``Scope`` value without prefix, lower case.

``SCOPE_ROUND1_PAYMENT`` is ``round1_payment``. Deriving them from the enum keeps
the documents and the contract in step: a new scope in the proto is usable in a
rule set without touching this code.
"""

from __future__ import annotations

from openloop.rules.v1 import resources_pb2

_PREFIX = "SCOPE_"

KNOWN_SCOPES = frozenset(
    name.removeprefix(_PREFIX).lower()
    for name, number in resources_pb2.Scope.items()
    if number != resources_pb2.SCOPE_UNSPECIFIED
)


def scope_name(scope: resources_pb2.Scope.ValueType) -> str | None:
    """The rule-set name of ``scope``; None for UNSPECIFIED or a value this build lacks."""
    if scope == resources_pb2.SCOPE_UNSPECIFIED or scope not in resources_pb2.Scope.values():
        return None
    return resources_pb2.Scope.Name(scope).removeprefix(_PREFIX).lower()
