"""The shipped DOPA district table and the validation of district codes against it."""

from __future__ import annotations

from importlib.resources import files

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openloop_identity.domain.districts import (
    District,
    DistrictError,
    DistrictReason,
    DistrictTable,
    is_well_formed,
    load_districts,
    parse_districts,
)

DISTRICT_ROWS = 928
"""878 amphoe and 50 Bangkok khet; data/README.md explains the two source rows left out."""

DOPA_PROVINCE_CODES = frozenset(
    str(code)
    for first, last in (
        (10, 27),  # Bangkok, the centre and the east
        (30, 49),  # the northeast, with 38 Bueng Kan
        (50, 58),  # the north
        (60, 67),  # the lower north
        (70, 77),  # the west
        (80, 86),  # the south
        (90, 96),  # the far south
    )
    for code in range(first, last + 1)
)
"""The 77 DOPA province codes, written out independently of the data file."""

HEADER = "code,province_code,name_en,name_th\n"


@pytest.fixture(scope="module")
def table() -> DistrictTable:
    return load_districts()


def _csv_lines() -> list[str]:
    text = (files("openloop_identity") / "data" / "districts.csv").read_text(encoding="utf-8")
    return text.splitlines()


def test_the_province_list_used_here_has_77_provinces() -> None:
    assert len(DOPA_PROVINCE_CODES) == 77


def test_the_table_has_every_row_of_the_file(table: DistrictTable) -> None:
    lines = _csv_lines()
    assert lines[0] == HEADER.strip()
    assert len(table) == len(lines) - 1 == DISTRICT_ROWS


def test_the_file_is_sorted_by_code_without_repeats() -> None:
    codes = [line.split(",", 1)[0] for line in _csv_lines()[1:]]
    assert codes == sorted(set(codes))


def test_iteration_is_in_code_order(table: DistrictTable) -> None:
    codes = [district.code for district in table]
    assert len(codes) == DISTRICT_ROWS
    assert codes == sorted(codes)


def test_1001_is_khet_phra_nakhon_in_bangkok(table: DistrictTable) -> None:
    assert table.require("1001") == District("1001", "10", "Khet Phra Nakhon", "เขตพระนคร")
    assert table.get("1001") == table.require("1001")
    assert table.province_of("1001") == "10"


def test_an_amphoe_resolves(table: DistrictTable) -> None:
    district = table.require("5001")
    assert district.name_en == "Amphoe Mueang Chiang Mai"
    assert district.name_th == "อำเภอเมืองเชียงใหม่"
    assert district.province_code == "50"
    assert table.province_of("5001") == "50"


@pytest.mark.parametrize(
    ("code", "name_en", "province_code"),
    [
        ("1050", "Khet Bang Bon", "10"),  # the last Bangkok khet
        ("3801", "Amphoe Mueang Bueng Kan", "38"),  # the newest province (2011)
        ("5025", "Amphoe Galyani Vadhana", "50"),  # the newest amphoe (2009)
        ("9613", "Amphoe Cho-airong", "96"),  # the last code
    ],
)
def test_edge_districts_resolve(
    table: DistrictTable, code: str, name_en: str, province_code: str
) -> None:
    district = table.require(code)
    assert (district.name_en, district.province_code) == (name_en, province_code)


def test_bangkok_has_50_khet_and_the_rest_are_amphoe(table: DistrictTable) -> None:
    bangkok = [d for d in table if d.province_code == "10"]
    others = [d for d in table if d.province_code != "10"]
    assert len(bangkok) == 50
    assert all(d.name_th.startswith("เขต") and d.name_en.startswith("Khet ") for d in bangkok)
    assert len(others) == 878
    assert all(d.name_th.startswith("อำเภอ") and d.name_en.startswith("Amphoe ") for d in others)


def test_every_province_prefix_is_one_of_the_77_provinces(table: DistrictTable) -> None:
    for district in table:
        assert district.province_code == district.code[:2]
        assert district.province_code in DOPA_PROVINCE_CODES
    assert {district.province_code for district in table} == DOPA_PROVINCE_CODES


@pytest.mark.parametrize(
    "code",
    [
        "",
        "100",
        "10011",
        "abcd",
        "10 1",
        " 1001",
        "1001 ",
        "1001\n",
        "๑๐๐๑",  # Thai digits
        "\uff11\uff10\uff10\uff11",  # fullwidth digits
        "10-01",
        "1101700230708",  # a citizen ID typed into the wrong field
    ],
)
def test_malformed_codes_fail_without_echoing_the_value(table: DistrictTable, code: str) -> None:
    with pytest.raises(DistrictError) as caught:
        table.require(code, field="home_district_code")
    assert caught.value.reason == DistrictReason.MALFORMED_DISTRICT == "MALFORMED_DISTRICT"
    assert caught.value.field == "home_district_code"
    message = str(caught.value)
    assert "home_district_code" in message
    if code.strip():
        assert code.strip() not in message
    assert table.get(code) is None
    assert not is_well_formed(code)


@pytest.mark.parametrize(
    "code",
    [
        "0000",
        "1000",  # a province code with district number 00
        "1051",  # one past the last Bangkok khet
        "1099",
        "2504",  # a gap in Prachin Buri's numbering
        "2801",  # 28 and 29 are not province codes
        "7074",  # the local-government rows dropped from the source
        "9077",
        "9999",
    ],
)
def test_unknown_codes_fail_with_their_reason(table: DistrictTable, code: str) -> None:
    with pytest.raises(DistrictError) as caught:
        table.require(code, field="merchant.district_code")
    assert caught.value.reason == DistrictReason.UNKNOWN_DISTRICT == "UNKNOWN_DISTRICT"
    assert caught.value.field == "merchant.district_code"
    assert "merchant.district_code" in str(caught.value)
    assert table.get(code) is None
    assert is_well_formed(code)


def test_province_of_rejects_what_require_rejects(table: DistrictTable) -> None:
    with pytest.raises(DistrictError) as unknown:
        table.province_of("1099")
    assert unknown.value.reason == DistrictReason.UNKNOWN_DISTRICT
    assert unknown.value.field == "district_code"
    with pytest.raises(DistrictError) as malformed:
        table.province_of("10", field="home_district_code")
    assert malformed.value.reason == DistrictReason.MALFORMED_DISTRICT
    assert malformed.value.field == "home_district_code"


def test_district_errors_are_value_errors() -> None:
    assert issubclass(DistrictError, ValueError)


def test_the_file_is_loaded_once() -> None:
    assert load_districts() is load_districts()


@given(code=st.text(alphabet="0123456789", min_size=4, max_size=4))
def test_require_and_get_agree_on_every_four_digit_code(code: str) -> None:
    table = load_districts()
    found = table.get(code)
    if found is None:
        with pytest.raises(DistrictError) as caught:
            table.require(code)
        assert caught.value.reason == DistrictReason.UNKNOWN_DISTRICT
    else:
        assert table.require(code) is found
        assert found.code == code
        assert table.province_of(code) == code[:2]


@given(code=st.text().filter(lambda s: not (len(s) == 4 and s.isascii() and s.isdigit())))
def test_anything_else_is_malformed(code: str) -> None:
    with pytest.raises(DistrictError) as caught:
        load_districts().require(code)
    assert caught.value.reason == DistrictReason.MALFORMED_DISTRICT


def test_a_small_table_parses() -> None:
    table = parse_districts(
        HEADER + "1002,10,Khet Dusit,เขตดุสิต\n1001,10,Khet Phra Nakhon,เขตพระนคร\n"
    )
    assert len(table) == 2
    assert [d.code for d in table] == ["1001", "1002"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "id,name_th,name_en,province_id\n1001,เขตพระนคร,Khet Phra Nakhon,1\n",
        HEADER + "1001,10,Khet Phra Nakhon\n",  # a column short
        HEADER + "101,10,Khet Phra Nakhon,เขตพระนคร\n",
        HEADER + "1001,11,Khet Phra Nakhon,เขตพระนคร\n",  # province code disagrees with the code
        HEADER + "1001,10,,เขตพระนคร\n",
        HEADER + "1001,10,Khet Phra Nakhon, \n",
        HEADER + "1001,10,Khet Phra Nakhon,เขตพระนคร\n1001,10,Khet Dusit,เขตดุสิต\n",
    ],
)
def test_a_damaged_table_is_refused(text: str) -> None:
    with pytest.raises(DistrictError) as caught:
        parse_districts(text)
    assert caught.value.reason == DistrictReason.INVALID_DISTRICT_TABLE
    assert caught.value.field is None
