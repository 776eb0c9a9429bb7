"""IAL and AAL levels: strict parsing, ordering, and the minimum each purpose needs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openloop_identity.domain.assurance import (
    AAL,
    DEFAULT_REQUIREMENTS,
    IAL,
    AssuranceError,
    AssurancePolicy,
    LevelRequirement,
    Purpose,
)

IAL_ORDER = ["1.1", "1.2", "1.3", "2.1", "2.2", "2.3", "3"]
AAL_ORDER = ["1", "2.1", "2.2", "3"]


def test_levels_parse_from_the_standard_strings_in_order() -> None:
    assert [IAL.parse(text).value for text in IAL_ORDER] == IAL_ORDER
    assert [AAL.parse(text).value for text in AAL_ORDER] == AAL_ORDER
    assert IAL.parse("2.3") is IAL.IAL_2_3
    assert AAL.parse("2.1") is AAL.AAL_2_1
    assert sorted(IAL, reverse=True) == list(reversed(IAL))
    assert sorted(AAL, reverse=True) == list(reversed(AAL))


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (IAL, "2"),  # no bare "2": the NDID levels are 2.1, 2.2, 2.3
        (IAL, "2.30"),
        (IAL, " 2.3"),
        (IAL, "IAL2.3"),
        (IAL, "2,3"),
        (IAL, "3.0"),
        (IAL, ""),
        (AAL, "2"),
        (AAL, "1.1"),  # an IAL value, not an AAL
        (AAL, "2.3"),
        (IAL, 2.3),
        (IAL, 3),
        (AAL, 1),
        (AAL, None),
        (AAL, True),
    ],
)
def test_anything_else_is_refused(kind: type[IAL] | type[AAL], text: object) -> None:
    with pytest.raises(AssuranceError) as caught:
        kind.parse(text)
    assert caught.value.reason == "ASSURANCE_LEVEL_UNKNOWN"
    assert isinstance(caught.value, ValueError)


@given(st.text(max_size=6))
def test_only_the_listed_strings_parse(text: str) -> None:
    for kind, allowed in ((IAL, IAL_ORDER), (AAL, AAL_ORDER)):
        if text in allowed:
            assert kind.parse(text).value == text
        else:
            with pytest.raises(AssuranceError):
                kind.parse(text)


@given(st.sampled_from(IAL_ORDER), st.sampled_from(IAL_ORDER))
def test_ial_order_follows_the_standard(a: str, b: str) -> None:
    left, right = IAL.parse(a), IAL.parse(b)
    expected = IAL_ORDER.index(a) - IAL_ORDER.index(b)
    assert (left < right) is (expected < 0)
    assert (left <= right) is (expected <= 0)
    assert (left > right) is (expected > 0)
    assert (left >= right) is (expected >= 0)
    assert left.meets(right) is (expected >= 0)


@given(st.sampled_from(AAL_ORDER), st.sampled_from(AAL_ORDER))
def test_aal_order_follows_the_standard(a: str, b: str) -> None:
    left, right = AAL.parse(a), AAL.parse(b)
    expected = AAL_ORDER.index(a) - AAL_ORDER.index(b)
    assert (left < right) is (expected < 0)
    assert left.meets(right) is (expected >= 0)


def test_ial_and_aal_do_not_compare() -> None:
    assert IAL.IAL_3 != AAL.AAL_3  # type: ignore[comparison-overlap]
    with pytest.raises(TypeError):
        _ = IAL.IAL_1_1 < AAL.AAL_3
    with pytest.raises(TypeError):
        IAL.IAL_2_3.meets(AAL.AAL_1)  # type: ignore[arg-type]


def test_levels_print_as_in_the_standard() -> None:
    assert str(IAL.IAL_2_3) == "IAL 2.3"
    assert str(AAL.AAL_3) == "AAL 3"


def test_default_policy_enrolment_needs_ial_2_3_and_payment_aal_2_1() -> None:
    policy = AssurancePolicy()
    enrolment = policy.requirement_for(Purpose.ENROLMENT)
    payment = policy.requirement_for(Purpose.PAYMENT)
    assert enrolment.is_met_by(IAL.IAL_2_3, AAL.AAL_1)
    assert not enrolment.is_met_by(IAL.IAL_2_2, AAL.AAL_3)
    assert payment.is_met_by(IAL.IAL_1_1, AAL.AAL_2_1)
    assert not payment.is_met_by(IAL.IAL_3, AAL.AAL_1)
    assert set(DEFAULT_REQUIREMENTS) == set(Purpose)


def test_overrides_replace_only_the_purposes_they_name() -> None:
    policy = AssurancePolicy({Purpose.PAYMENT: LevelRequirement(IAL.IAL_2_3, AAL.AAL_2_2)})
    assert policy.requirement_for(Purpose.PAYMENT) == LevelRequirement(IAL.IAL_2_3, AAL.AAL_2_2)
    assert policy.requirement_for(Purpose.ENROLMENT) == DEFAULT_REQUIREMENTS[Purpose.ENROLMENT]


def test_policy_reads_from_configuration_strings() -> None:
    policy = AssurancePolicy.from_config(
        {"payment": {"min_aal": "2.2"}, "enrolment": {"min_ial": "3", "min_aal": "2.1"}}
    )
    assert policy.requirement_for(Purpose.PAYMENT) == LevelRequirement(IAL.IAL_1_1, AAL.AAL_2_2)
    assert policy.requirement_for(Purpose.ENROLMENT) == LevelRequirement(IAL.IAL_3, AAL.AAL_2_1)
    assert "enrolment: IAL 3, AAL 2.1" in repr(policy)


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"withdrawal": {"min_aal": "2.1"}}, "ASSURANCE_POLICY_INVALID"),
        ({"payment": {"aal": "2.1"}}, "ASSURANCE_POLICY_INVALID"),
        ({"payment": {"min_aal": "2"}}, "ASSURANCE_LEVEL_UNKNOWN"),
        ({"enrolment": {"min_ial": "2.4"}}, "ASSURANCE_LEVEL_UNKNOWN"),
    ],
)
def test_policy_configuration_mistakes_are_refused(
    config: dict[str, dict[str, str]], reason: str
) -> None:
    with pytest.raises(AssuranceError) as caught:
        AssurancePolicy.from_config(config)
    assert caught.value.reason == reason
