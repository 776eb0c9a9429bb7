"""The operators' audit trail becomes append-only in the database: nothing can change or
delete an event by mistake.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

from openloop_runtime.migrations import drop_append_only, make_append_only

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

_APPEND_ONLY = ("audit_events",)


def upgrade() -> None:
    make_append_only(*_APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(*_APPEND_ONLY)
