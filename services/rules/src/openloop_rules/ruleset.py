"""Rule-set documents: the YAML the program's rules are written in, parsed and checked.

A rule set is data, versioned and immutable once published: the code only knows how to
read, check and evaluate one. It names the program it governs (``program``, and the
``program_version`` and ``phase`` whose parameters its rules read as ``program.*``).

Each rule has an ``effect`` deciding how its CEL ``condition`` is read:

- ``require`` (the default): the condition says what every allowed decision satisfies;
  the rule is violated when it is FALSE (``payee.district_code == payer.district_code``);
- ``deny``: the condition describes what is forbidden; the rule is violated when it is
  TRUE (``transaction.channel == "ONLINE"``).

A decision is allowed exactly when no rule of its scope is violated and every fact the
rules reach is present. There is no "allow" effect that overrides another rule's denial:
the outcome never depends on the order of the rules.
"""

from __future__ import annotations

import enum
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from openloop_rules.program import PROGRAM_VERSION, YAML_FAILURES, sha256_of, yaml_problem
from openloop_rules.scopes import KNOWN_SCOPES

_DOCUMENT = ConfigDict(extra="forbid", frozen=True)
RULE_SET_VERSION = r"^[a-z0-9][a-z0-9.-]{0,62}$"
DEFAULT_PROGRAM = "digital-wallet"

__all__ = ["RuleSetDocument", "RuleSetError", "parse_rule_set", "sha256_of"]


class RuleSetError(ValueError):
    """A rule-set document that must not be published or loaded.

    ``rule_id``, ``line`` and ``column`` say where (the position is within the rule's
    condition, 1-based); ``field`` names the part of the document, when known.
    """

    def __init__(
        self, message: str, *, rule_id: str = "", line: int = 0, column: int = 0, field: str = ""
    ) -> None:
        super().__init__(message)
        self.rule_id = rule_id
        self.line = line
        self.column = column
        self.field = field


class Effect(enum.StrEnum):
    REQUIRE = "require"
    DENY = "deny"


class Rule(BaseModel):
    model_config = _DOCUMENT

    id: StrictStr = Field(pattern=r"^[A-Z][A-Z0-9_.-]{0,31}$")
    title_en: StrictStr = Field(min_length=1)
    title_th: StrictStr = Field(min_length=1)
    scopes: tuple[StrictStr, ...] = Field(min_length=1)
    effect: Effect = Effect.REQUIRE
    condition: StrictStr = Field(min_length=1, max_length=4096)
    reason_code: StrictStr = Field(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")
    explanation_en: StrictStr = Field(min_length=1)
    explanation_th: StrictStr = Field(min_length=1)

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(scopes) - KNOWN_SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; known: {sorted(KNOWN_SCOPES)}")
        return scopes


class RuleSetDocument(BaseModel):
    model_config = _DOCUMENT

    version: StrictStr = Field(pattern=RULE_SET_VERSION)
    description: StrictStr = ""
    program: StrictStr = Field(default=DEFAULT_PROGRAM, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    """The program governed; documents written before programs were data govern the default."""
    program_version: StrictStr | None = Field(default=None, pattern=PROGRAM_VERSION)
    """The program version whose parameters the rules read; None: no ``program.*`` facts."""
    phase: StrictInt | None = Field(default=None, ge=1)
    """The phase whose cohort window ``program.phase`` describes."""
    rules: tuple[Rule, ...] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> RuleSetDocument:
        ids = [rule.id for rule in self.rules]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"rule ids must be unique; repeated: {duplicates}")
        if self.phase is not None and self.program_version is None:
            raise ValueError("a phase needs a program_version")
        return self


def parse_rule_set(document: str) -> RuleSetDocument:
    """The checked document, or :class:`RuleSetError` saying what is wrong and where."""
    try:
        data = yaml.safe_load(document)
    except YAML_FAILURES as error:
        mark = getattr(error, "problem_mark", None)
        raise RuleSetError(
            f"rule set is not valid YAML: {yaml_problem(error)}",
            line=mark.line + 1 if mark is not None else 0,
            column=mark.column + 1 if mark is not None else 0,
            field="document",
        ) from error
    if not isinstance(data, dict):
        raise RuleSetError(
            "rule set must be a YAML mapping with 'version' and 'rules'", field="document"
        )
    try:
        return RuleSetDocument.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = tuple(first.get("loc", ()))
        raise RuleSetError(
            f"rule set is malformed: {error}",
            rule_id=_rule_id_at(data, location),
            field=".".join(str(part) for part in location),
        ) from error


def _rule_id_at(data: dict[str, Any], location: tuple[Any, ...]) -> str:
    if len(location) < 2 or location[0] != "rules" or not isinstance(location[1], int):
        return ""
    rules = data.get("rules")
    if not isinstance(rules, list) or location[1] >= len(rules):
        return ""
    rule = rules[location[1]]
    rule_id = rule.get("id") if isinstance(rule, dict) else None
    return rule_id if isinstance(rule_id, str) else ""
