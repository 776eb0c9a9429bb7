"""The ledger process collects its old generation rarely, its young ones as CPython does."""

from __future__ import annotations

import gc
import runpy
from collections.abc import Iterator

import pytest

from openloop_ledger.app import build, build_sealer
from openloop_ledger.collector import FULL_COLLECTION_AFTER, collect_less_often
from openloop_runtime import entrypoint


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


def test_the_ledger_command_sets_the_collector_before_it_serves_or_seals(
    thresholds: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ships is ``python -m openloop_ledger``: it must call the collector setting (for
    ``serve`` and ``seal`` alike), not only offer it."""
    young, middle, _ = thresholds
    gc.set_threshold(young, middle, 10)
    called: dict[str, object] = {}

    def run_service(**kwargs: object) -> None:
        called.update(kwargs, threshold=gc.get_threshold())

    monkeypatch.setattr(entrypoint, "run_service", run_service)
    runpy.run_module("openloop_ledger", run_name="__main__")
    assert called["threshold"] == (young, middle, FULL_COLLECTION_AFTER)
    assert called["factory"] is build
    assert called["roles"] == {"seal": build_sealer}
