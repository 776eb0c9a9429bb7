"""Shared fixtures for the deploy tests: a dev PKI minted once per session."""

from __future__ import annotations

import pytest

from openloop_dev.pki import DevPki, ensure_dev_pki

PARTICIPANTS = ("bank-a", "bank-b")


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return ensure_dev_pki(tmp_path_factory.mktemp("pki"), PARTICIPANTS)
