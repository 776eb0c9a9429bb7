"""Obligations become append-only in the database: a recorded obligation is what positions
and cycles are summed from, and nothing can change or delete one by mistake.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from openloop_runtime.migrations import drop_append_only, make_append_only

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_APPEND_ONLY = ("obligations",)


def upgrade() -> None:
    make_append_only(*_APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(*_APPEND_ONLY)
