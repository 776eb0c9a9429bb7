"""Identity and authentication assurance levels, and the minimum each purpose needs.

Thailand's digital-ID recommendations (ETDA ขมธอ. 19 for identity proofing, ขมธอ. 20 for
authentication) grade an identity by how well the person was proofed (IAL) and how strongly
they signed in (AAL). The levels below are the ones the national NDID platform enumerates:
IAL 1.1 < 1.2 < 1.3 < 2.1 < 2.2 < 2.3 < 3 and AAL 1 < 2.1 < 2.2 < 3. A relying party asks for
a minimum of each and refuses an assertion below it.

The levels are enums ordered by strength; they compare only with their own kind, so an IAL is
never mistaken for an AAL. They parse from the exact strings the standards use ("2.3", "3")
and from nothing else. Which minimum applies to which purpose is configuration (the program
changed its rules several times), held in an ``AssurancePolicy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Self


class AssuranceError(ValueError):
    """An assurance level or policy that cannot be read; ``reason`` is stable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Level(Enum):
    """A level that is ordered by its position in the class: later members are stronger."""

    @property
    def rank(self) -> int:
        return list(type(self)).index(self)

    @classmethod
    def parse(cls, text: object) -> Self:
        """The level written as in the standard ("2.3", "3"); anything else is refused."""
        if isinstance(text, str):
            for level in cls:
                if level.value == text:
                    return level
        allowed = ", ".join(f'"{level.value}"' for level in cls)
        raise AssuranceError(
            "ASSURANCE_LEVEL_UNKNOWN",
            f"not an {cls.__name__} level; expected one of {allowed} (as a string)",
        )

    def meets(self, minimum: Self) -> bool:
        """True when this level is the minimum or stronger."""
        return self >= minimum

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.value}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.rank >= other.rank


class IAL(_Level):
    """Identity assurance level: how well the person behind the identity was proofed."""

    IAL_1_1 = "1.1"
    IAL_1_2 = "1.2"
    IAL_1_3 = "1.3"
    IAL_2_1 = "2.1"
    IAL_2_2 = "2.2"
    IAL_2_3 = "2.3"
    """Bank-grade e-KYC: ID card checked with the Department of Provincial Administration and
    a face match with liveness."""
    IAL_3 = "3"


class AAL(_Level):
    """Authenticator assurance level: how strongly the person proved it is them this time."""

    AAL_1 = "1"
    AAL_2_1 = "2.1"
    AAL_2_2 = "2.2"
    AAL_3 = "3"


class Purpose(StrEnum):
    """What a verified identity is about to be used for."""

    ENROLMENT = "enrolment"
    PAYMENT = "payment"
    WALLET_MOVE = "wallet_move"
    """The citizen asks another participant to host their wallet."""


@dataclass(frozen=True, slots=True)
class LevelRequirement:
    """The weakest IAL and AAL a purpose accepts; the defaults accept any level."""

    min_ial: IAL = IAL.IAL_1_1
    min_aal: AAL = AAL.AAL_1

    def is_met_by(self, ial: IAL, aal: AAL) -> bool:
        return ial.meets(self.min_ial) and aal.meets(self.min_aal)


DEFAULT_REQUIREMENTS: Mapping[Purpose, LevelRequirement] = MappingProxyType(
    {
        Purpose.ENROLMENT: LevelRequirement(min_ial=IAL.IAL_2_3),
        Purpose.PAYMENT: LevelRequirement(min_aal=AAL.AAL_2_1),
        Purpose.WALLET_MOVE: LevelRequirement(min_ial=IAL.IAL_2_3, min_aal=AAL.AAL_2_1),
    }
)
"""Enrolment needs bank-grade proofing (IAL 2.3); a payment needs a second factor ("AAL 2",
the lowest of which is AAL 2.1); moving a wallet hands the whole balance to a new bank, so it
needs both."""

_REQUIREMENT_KEYS = frozenset({"min_ial", "min_aal"})


class AssurancePolicy:
    """The minimum levels for every purpose.

    ``overrides`` replaces the default requirement of the purposes it names; the others keep
    ``DEFAULT_REQUIREMENTS``, so every purpose always has a requirement.
    """

    def __init__(self, overrides: Mapping[Purpose, LevelRequirement] | None = None) -> None:
        self._requirements = MappingProxyType({**DEFAULT_REQUIREMENTS, **(overrides or {})})

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, str]]) -> AssurancePolicy:
        """Reads overrides as they come from a settings file or environment, for example
        ``{"payment": {"min_aal": "2.2"}, "enrolment": {"min_ial": "2.3", "min_aal": "2.1"}}``.
        A key left out of a purpose means "any level" for that dimension."""
        overrides: dict[Purpose, LevelRequirement] = {}
        for name, levels in config.items():
            try:
                purpose = Purpose(name)
            except ValueError:
                allowed = ", ".join(p.value for p in Purpose)
                raise AssuranceError(
                    "ASSURANCE_POLICY_INVALID",
                    f"unknown purpose {name!r} in the assurance policy; expected one of {allowed}",
                ) from None
            unknown = set(levels) - _REQUIREMENT_KEYS
            if unknown:
                raise AssuranceError(
                    "ASSURANCE_POLICY_INVALID",
                    f"unknown keys {sorted(unknown)} for purpose {name!r}; "
                    f"expected min_ial and/or min_aal",
                )
            overrides[purpose] = LevelRequirement(
                min_ial=IAL.parse(levels["min_ial"]) if "min_ial" in levels else IAL.IAL_1_1,
                min_aal=AAL.parse(levels["min_aal"]) if "min_aal" in levels else AAL.AAL_1,
            )
        return cls(overrides)

    def requirement_for(self, purpose: Purpose) -> LevelRequirement:
        return self._requirements[purpose]

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{purpose.value}: {req.min_ial}, {req.min_aal}"
            for purpose, req in self._requirements.items()
        )
        return f"AssurancePolicy({parts})"
