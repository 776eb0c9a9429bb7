"""The contracts: buf STANDARD lint is clean and the committed Python matches the protos."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

from openloop_dev.protogen import GENERATED_ROOT, PROTO_ROOT, generate


def _tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, f"{name} is not installed; run make test"
    return found


def test_buf_lint_is_clean():
    result = subprocess.run(
        [_tool("buf"), "lint"], cwd=PROTO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _differences(left: Path, right: Path) -> list[str]:
    comparison = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"only in committed: {n}" for n in comparison.left_only]
    found += [f"only in generated: {n}" for n in comparison.right_only]
    found += [f"differs: {n}" for n in comparison.diff_files]
    for name, sub in comparison.subdirs.items():
        found += _differences(left / name, right / name) if sub else []
    return found


def test_generated_code_matches_the_protos(tmp_path):
    generate(tmp_path)
    differences = _differences(GENERATED_ROOT, tmp_path)
    assert not differences, "run `make gen`: " + ", ".join(differences)
