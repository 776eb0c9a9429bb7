"""Rule-set documents: the YAML the program's rules are written in, parsed and checked.

A rule set is data, versioned and immutable once stored: the code only knows how
to read and evaluate one. Each rule's ``condition`` is a CEL expression over the
payment facts (see :mod:`openloop_rules.facts`) that must be TRUE for the payment
to be allowed.
"""

from __future__ import annotations

import hashlib

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from openloop_rules.scopes import KNOWN_SCOPES

_DOCUMENT = ConfigDict(extra="forbid", frozen=True)


class RuleSetError(ValueError):
    """A rule-set document that must not be loaded: malformed, or a rule that cannot run."""


class Rule(BaseModel):
    model_config = _DOCUMENT

    id: StrictStr = Field(pattern=r"^[A-Z][A-Z0-9_.-]{0,31}$")
    title_en: StrictStr = Field(min_length=1)
    title_th: StrictStr = Field(min_length=1)
    scopes: tuple[StrictStr, ...] = Field(min_length=1)
    condition: StrictStr = Field(min_length=1)
    """CEL; TRUE means the payment satisfies the rule."""
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

    version: StrictStr = Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")
    description: StrictStr = ""
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> RuleSetDocument:
        ids = [rule.id for rule in self.rules]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"rule ids must be unique; repeated: {duplicates}")
        return self


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def parse_rule_set(document: str) -> RuleSetDocument:
    """The checked document, or :class:`RuleSetError` saying what is wrong with it."""
    try:
        data = yaml.safe_load(document)
    except yaml.YAMLError as error:
        raise RuleSetError(f"rule set is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise RuleSetError("rule set must be a YAML mapping with 'version' and 'rules'")
    try:
        return RuleSetDocument.model_validate(data)
    except ValidationError as error:
        raise RuleSetError(f"rule set is malformed: {error}") from error
