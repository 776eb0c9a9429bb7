"""The ledger process collects its old generation rarely, its young ones as CPython does."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from openloop_ledger.collector import FULL_COLLECTION_AFTER, collect_less_often


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    try:
        yield before
    finally:
        gc.set_threshold(*before)


def test_only_full_collections_are_considered_less_often(
    thresholds: tuple[int, int, int],
) -> None:
    young, middle, _ = thresholds
    collect_less_often()
    assert gc.get_threshold() == (young, middle, FULL_COLLECTION_AFTER)
    assert FULL_COLLECTION_AFTER > 10  # CPython's default
