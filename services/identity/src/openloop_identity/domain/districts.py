"""The DOPA district table shipped with the service, and validation of district codes.

Citizens enrol with a home district and merchants register one; spending rule R1 compares the
two, so a code must name a real district, not merely look like one. A district code is four
ASCII digits: the DOPA province code followed by the district's number in that province (1001
is Khet Phra Nakhon in Bangkok, province 10).

The table is ``openloop_identity/data/districts.csv`` (its provenance and refresh steps are in
``data/README.md``). :func:`load_districts` reads it once, as package data through
``importlib.resources``, with the standard library's ``csv`` module, and checks it before use so
that a damaged file stops the service at start-up instead of rejecting real districts later.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files

_CODE = re.compile(r"[0-9]{4}")
"""Four ASCII digits. ``str.isdigit`` would also accept Thai digits such as "๑๐๐๑"."""
_HEADER = ("code", "province_code", "name_en", "name_th")
_DEFAULT_FIELD = "district_code"


class DistrictReason(StrEnum):
    MALFORMED_DISTRICT = "MALFORMED_DISTRICT"
    """The value is not four ASCII digits."""
    UNKNOWN_DISTRICT = "UNKNOWN_DISTRICT"
    """Four digits, but no district in the table has that code."""
    INVALID_DISTRICT_TABLE = "INVALID_DISTRICT_TABLE"
    """The shipped table itself is damaged: a packaging fault, never a client's."""


class DistrictError(ValueError):
    """A district code, or the district table, is invalid.

    ``reason`` is stable and machine-readable. ``field`` names the request field at fault (for
    example ``home_district_code``), or is None for a damaged table. A malformed value is never
    repeated in the message, as a client may have put other data in the field by mistake.
    """

    def __init__(self, reason: DistrictReason, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class District:
    """One amphoe, or one khet of Bangkok."""

    code: str
    """The 4-digit DOPA district code, for example "5001"."""
    province_code: str
    """The 2-digit DOPA province code: the first two digits of ``code``."""
    name_en: str
    name_th: str


def is_well_formed(code: str) -> bool:
    """Whether ``code`` has the shape of a district code (four ASCII digits), known or not."""
    return _CODE.fullmatch(code) is not None


class DistrictTable:
    """The districts by code. Build one with :func:`load_districts` or :func:`parse_districts`."""

    def __init__(self, districts: Iterable[District]) -> None:
        by_code: dict[str, District] = {}
        for district in districts:
            _check(district)
            if district.code in by_code:
                raise _table_error(f"district code {district.code} appears more than once")
            by_code[district.code] = district
        self._by_code = dict(sorted(by_code.items()))

    def get(self, code: str) -> District | None:
        """The district with this code, or None (also for a malformed code)."""
        return self._by_code.get(code)

    def require(self, code: str, *, field: str = _DEFAULT_FIELD) -> District:
        """The district with this code.

        Raises DistrictError with reason MALFORMED_DISTRICT if ``code`` is not four ASCII
        digits, or UNKNOWN_DISTRICT if no district has it. ``field`` names the request field
        in the message and on the error.
        """
        if not is_well_formed(code):
            raise DistrictError(
                DistrictReason.MALFORMED_DISTRICT,
                f"{field} must be a 4-digit DOPA district code: "
                "the 2-digit province code followed by the 2-digit district number",
                field=field,
            )
        district = self._by_code.get(code)
        if district is None:
            raise DistrictError(
                DistrictReason.UNKNOWN_DISTRICT,
                f"{field} {code} is not a district in the DOPA district table",
                field=field,
            )
        return district

    def province_of(self, code: str, *, field: str = _DEFAULT_FIELD) -> str:
        """The 2-digit province code of a known district; raises like :meth:`require`."""
        return self.require(code, field=field).province_code

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[District]:
        """The districts in code order."""
        return iter(self._by_code.values())


def parse_districts(text: str) -> DistrictTable:
    """A table from CSV text with the header ``code,province_code,name_en,name_th``.

    Raises DistrictError with reason INVALID_DISTRICT_TABLE if the header, a row's shape, a
    code, a province code or a name is wrong, or a code repeats.
    """
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None or tuple(header) != _HEADER:
        raise _table_error(f"the header must be {','.join(_HEADER)}")
    districts: list[District] = []
    for row in rows:
        if len(row) != len(_HEADER):
            raise _table_error(f"line {rows.line_num} has {len(row)} columns, not {len(_HEADER)}")
        code, province_code, name_en, name_th = row
        districts.append(District(code, province_code, name_en, name_th))
    return DistrictTable(districts)


@cache
def load_districts() -> DistrictTable:
    """The district table shipped in this package, read on first use and then shared."""
    resource = files("openloop_identity") / "data" / "districts.csv"
    return parse_districts(resource.read_text(encoding="utf-8"))


def _check(district: District) -> None:
    if not is_well_formed(district.code):
        raise _table_error("a district code is not four ASCII digits")
    if district.province_code != district.code[:2]:
        raise _table_error(
            f"district {district.code} has province code {district.province_code!r}, "
            f"not {district.code[:2]}"
        )
    if not district.name_en.strip() or not district.name_th.strip():
        raise _table_error(f"district {district.code} is missing a name")


def _table_error(message: str) -> DistrictError:
    return DistrictError(DistrictReason.INVALID_DISTRICT_TABLE, f"district table: {message}")
