"""The rule sets and programs shipped inside the package: the seed of a fresh environment,
and the program versions a published rule set may name without sending the program."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from openloop_rules.program import ProgramDocument, ProgramError, parse_program, sha256_of
from openloop_rules.ruleset import RuleSetError, parse_rule_set

_PACKAGE = "openloop_rules"


@dataclass(frozen=True)
class ShippedRuleSet:
    version: str
    document: str
    sha256: str


@dataclass(frozen=True)
class ShippedProgram:
    program: ProgramDocument
    document: str
    sha256: str


def _names(folder: str) -> list[str]:
    entries = resources.files(_PACKAGE).joinpath(folder).iterdir()
    return sorted(e.name.removesuffix(".yaml") for e in entries if e.name.endswith(".yaml"))


def shipped_versions() -> list[str]:
    return _names("rulesets")


def shipped_rule_set(version: str) -> ShippedRuleSet:
    """The document ``rulesets/<version>.yaml``, checked to declare that same version."""
    entry = resources.files(_PACKAGE).joinpath("rulesets", f"{version}.yaml")
    if not entry.is_file():
        raise RuleSetError(f"no shipped rule set {version!r}; shipped: {shipped_versions()}")
    document = entry.read_text(encoding="utf-8")
    declared = parse_rule_set(document).version
    if declared != version:
        raise RuleSetError(f"rulesets/{version}.yaml declares version {declared!r}")
    return ShippedRuleSet(version=version, document=document, sha256=sha256_of(document))


def shipped_programs() -> dict[tuple[str, str], ShippedProgram]:
    """Every shipped program by (id, version); ``programs/<id>-<version>.yaml``."""
    shipped: dict[tuple[str, str], ShippedProgram] = {}
    for name in _names("programs"):
        entry = resources.files(_PACKAGE).joinpath("programs", f"{name}.yaml")
        document = entry.read_text(encoding="utf-8")
        program = parse_program(document)
        if f"{program.id}-{program.version}" != name:
            raise ProgramError(f"programs/{name}.yaml declares {program.id} {program.version}")
        shipped[program.key] = ShippedProgram(program, document, sha256_of(document))
    return shipped
