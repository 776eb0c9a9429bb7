"""Programs, rule sets, activations and the audit trail become append-only in the database:
their rows are never changed or deleted, and now nothing can change them by mistake.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from openloop_runtime.migrations import drop_append_only, make_append_only

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_APPEND_ONLY = (
    "programs",
    "rule_sets",
    "activations",
    "audit_events",
)


def upgrade() -> None:
    make_append_only(*_APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(*_APPEND_ONLY)
