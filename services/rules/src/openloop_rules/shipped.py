"""The rule sets shipped inside the package, the seed of a fresh environment."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from openloop_rules.ruleset import RuleSetError, parse_rule_set, sha256_of

_PACKAGE = "openloop_rules"
_FOLDER = "rulesets"


@dataclass(frozen=True)
class ShippedRuleSet:
    version: str
    document: str
    sha256: str


def shipped_versions() -> list[str]:
    folder = resources.files(_PACKAGE).joinpath(_FOLDER)
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def shipped_rule_set(version: str) -> ShippedRuleSet:
    """The document ``rulesets/<version>.yaml``, checked to declare that same version."""
    entry = resources.files(_PACKAGE).joinpath(_FOLDER, f"{version}.yaml")
    if not entry.is_file():
        raise RuleSetError(f"no shipped rule set {version!r}; shipped: {shipped_versions()}")
    document = entry.read_text(encoding="utf-8")
    declared = parse_rule_set(document).version
    if declared != version:
        raise RuleSetError(f"rulesets/{version}.yaml declares version {declared!r}")
    return ShippedRuleSet(version=version, document=document, sha256=sha256_of(document))
