"""The operators' command line against a real rules service."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from openloop_rules import admin
from openloop_rules.shipped import shipped_rule_set
from openloop_runtime.timestamps import utc_now
from services.rules.tests.conftest import (
    OPERATOR_KID,
    OPERATOR_PRIVATE_PEM,
    FreshDatabase,
    migrated,
    replica,
)
from services.rules.tests.rules_cases import DEFAULT_VERSION


async def test_publish_activate_and_list(
    fresh_database: FreshDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await migrated(fresh_database)
    key = tmp_path / "operator.pem"
    key.write_bytes(OPERATOR_PRIVATE_PEM)
    document = tmp_path / "next.yaml"
    document.write_text(
        shipped_rule_set(DEFAULT_VERSION).document.replace(DEFAULT_VERSION, "cli-1"),
        encoding="utf-8",
    )
    async with replica(url, utc_now) as running:
        target = running.target
        common = ["--target", target, "--key-file", str(key), "--kid", OPERATOR_KID,
                  "--operator", "carol"]  # fmt: skip

        def run(*argv: str) -> int:
            return admin.main([*common, *argv])

        assert await asyncio.to_thread(run, "publish", str(document), "--reason", "cli") == 0
        published = json.loads(capsys.readouterr().out)
        assert published["ruleSet"]["publishedBy"] == "operator:carol"
        assert await asyncio.to_thread(run, "activate", "cli-1", "--reason", "go") == 0
        assert json.loads(capsys.readouterr().out)["activation"]["ruleSet"] == "ruleSets/cli-1"
        assert await asyncio.to_thread(run, "list") == 0
        listed = json.loads(capsys.readouterr().out)
        assert [r["version"] for r in listed["ruleSets"]][:1] == ["cli-1"]
        assert await asyncio.to_thread(run, "activate", "nope-1", "--reason", "go") == 1
        assert "RULE_SET_NOT_FOUND" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["activate", "v-1"], ["rollback"]])
@pytest.mark.parametrize("at", ["2025-08-01T00:00", "2025-08-01", "1 August"])
def test_a_time_without_an_offset_is_refused(
    command: list[str], at: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """2025-08-01T00:00 would otherwise be taken as UTC: 07:00 in Bangkok, not midnight."""
    with pytest.raises(SystemExit) as caught:
        admin._parser().parse_args([*command, "--at", at, "--reason", "x"])
    assert caught.value.code == 2
    assert "--at" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2025-08-01T00:00:00+07:00", datetime(2025, 7, 31, 17, tzinfo=UTC)),
        ("2025-08-01T00:00Z", datetime(2025, 8, 1, tzinfo=UTC)),
    ],
)
def test_a_time_with_an_offset_is_taken(at: str, expected: datetime) -> None:
    for command in (["activate", "v-1"], ["rollback"]):
        args = admin._parser().parse_args([*command, "--at", at, "--reason", "x"])
        assert args.at == expected
