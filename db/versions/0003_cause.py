"""cause: every stage outcome and job carries a typed cause (verdict, upstream, infrastructure,
bad-input), so exit codes, bisect and reports read a value instead of the summary's wording.

Existing rows get the cause their status implies (fail/warn: verdict; error: infrastructure, or
upstream when the summary is the control run's "fails ... without the patch set too").

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stage_result") as batch:
        batch.add_column(sa.Column("cause", sa.String(length=16), nullable=True))
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("cause", sa.String(length=16), nullable=True))
    for table in ("stage_result", "job"):
        op.execute(
            f"UPDATE {table} SET cause = 'verdict' WHERE status IN ('fail', 'warn')"  # noqa: S608
        )
        op.execute(
            f"UPDATE {table} SET cause = 'upstream' WHERE status = 'error' "  # noqa: S608
            "AND summary LIKE 'no verdict: %without the patch set too: %'"
        )
        op.execute(
            f"UPDATE {table} SET cause = 'infrastructure' "  # noqa: S608
            "WHERE status = 'error' AND cause IS NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("cause")
    with op.batch_alter_table("stage_result") as batch:
        batch.drop_column("cause")
