"""The ledger benchmark's alternating rounds: medians, ratios and the round figures come from."""

from __future__ import annotations

import pytest

from bench.ledger import Rounds


def _rounds(values: list[float], ceilings: list[float]) -> Rounds:
    rounds = Rounds()
    for number, (value, ceiling) in enumerate(zip(values, ceilings, strict=True)):
        rounds.add(value, ceiling, {"cpu_us_server": number}, {"cpu_us_postgres": number})
    return rounds


def test_the_medians_their_ratio_and_every_round_are_reported() -> None:
    # The machine slowed down in round 2: its ceiling and the scenario both halved.
    rounds = _rounds([10_000, 5_000, 12_000], [20_000, 10_000, 30_000])

    assert rounds.value == 10_000
    assert rounds.ceiling == 20_000
    detail = rounds.detail()
    assert detail["ratio_to_ceiling_median"] == 0.5  # of 0.5, 0.5 and 0.4
    assert rounds.value / rounds.ceiling == 0.5
    assert (detail["round_2"], detail["round_2_ceiling"]) == (5_000, 10_000)
    assert detail["ceiling_median"] == 20_000


def test_a_ratio_of_medians_can_differ_from_the_median_ratio() -> None:
    rounds = _rounds([9_000, 10_000, 11_000], [30_000, 10_000, 11_000])

    assert rounds.value / rounds.ceiling == pytest.approx(10_000 / 11_000)
    assert rounds.detail()["ratio_to_ceiling_median"] == 1.0  # of 0.3, 1.0 and 1.0


def test_the_cpu_figures_are_those_of_the_round_with_the_median_rate() -> None:
    rounds = _rounds([7_000, 9_000, 8_000], [1, 1, 1])

    middle = rounds.middle()

    assert middle == 2
    assert rounds.cpu[middle] == {"cpu_us_server": 2}
    assert rounds.ceiling_cpu[middle] == {"cpu_us_postgres": 2}


def test_with_an_even_count_the_lower_middle_round_is_named() -> None:
    rounds = _rounds([8_000, 6_000], [1, 1])

    assert rounds.value == 7_000
    assert rounds.middle() == 1
